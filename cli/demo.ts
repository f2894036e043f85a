/**
 * `stakesync demo …`: stake, unstake, slash and register on the local stack of `npm run dev`, as
 * a developer and the application would. Local chains only: it signs with anvil's public keys.
 */
import { type DevConfig, loadDevConfig, readLocalDefaults } from "../lib/config";
import {
  assertLocal,
  DEMO_NAMES,
  DemoError,
  demoAmount,
  demoDeveloper,
  demoRegister,
  demoSlash,
  demoStake,
  demoUnstake,
  readDeployment,
} from "../lib/local/demo";

export const DEMO_HELP = `usage: stakesync demo <action> <name|address> [amount]

Acts on the local chain and database of \`npm run dev\` (its .env.local defaults, overridden by the
environment). Names are anvil's accounts 1–9: ${DEMO_NAMES.join(", ")}.

  stake <who> <amount>      mint MockUSDC to <who> and stake it (for an address: the owner stakes for it)
  unstake <who> <amount>    <who> unstakes (demo names only: it signs as the wallet)
  slash <who> <amount>      the vault's owner slashes <who>'s stake
  register <who> [email]    insert <who> into the developers table, as the application does at sign-up
                            (email default <name>@example.test; "none" for a row without one)

Amounts are tokens (6 decimals), e.g. 25 or 12.5. Watch the result on the status page
(http://localhost:42070/) or with: npx stakesync verify --local
`;

export async function demoCommand(args: string[]): Promise<number> {
  const [action, who, third] = args;
  let config: DevConfig;
  try {
    config = loadDevConfig({ ...readLocalDefaults(), ...process.env });
    if (!action || !who) throw new DemoError("an action and a developer are needed");
    if (!["stake", "unstake", "slash", "register"].includes(action)) throw new DemoError(`unknown action "${action}"`);
    const developer = demoDeveloper(who);
    const label = developer.name ? `${developer.name} (${developer.wallet})` : developer.wallet;
    if (action === "register") {
      await assertLocal(config);
      const email =
        third === "none" ? null : (third ?? `${developer.name ?? developer.wallet.slice(2, 10)}@example.test`);
      const added = await demoRegister(config, [{ wallet: developer.wallet, email }]);
      say(added ? `registered ${label}${email ? "" : " without an email"}` : `${label} is already registered`);
      return 0;
    }
    const act = { stake: demoStake, unstake: demoUnstake, slash: demoSlash }[action];
    if (!act) throw new DemoError(`unknown action "${action}"`);
    const amount = demoAmount(third);
    const deployment = readDeployment(config);
    await assertLocal(config, deployment);
    const receipt = await act(config, deployment, developer, amount);
    say(`${action} ${third} for ${label}: block ${receipt.blockNumber}, transaction ${receipt.transactionHash}`);
    return 0;
  } catch (error) {
    if (error instanceof DemoError) {
      process.stderr.write(`stakesync demo: ${error.message}\n\n${DEMO_HELP}`);
      return 2;
    }
    const message = (error as Error).message.split("\n")[0];
    process.stderr.write(`stakesync demo: ${message}\n(is \`npm run dev\` running?)\n`);
    return 2;
  }
}

const say = (line: string) => process.stdout.write(`${line}\n`);

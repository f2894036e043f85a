/**
 * The local stack of `npm run dev` (scripts/dev.ts starts it in a process group of its own):
 * embedded PostgreSQL and anvil (1 s blocks; each transaction mined at once while it deploys and
 * seeds), both keeping their state in STAKESYNC_DATA_DIR (.data/); MockUSDC + StakeVault deployed
 * once with a few demo developers; a mail catcher standing in for SMTP; `ponder dev` and the
 * sidecar. SIGTERM stops the children in order; the next run resumes.
 */
// Started by scripts/dev.ts, which has checked Node.js.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseUnits } from "viem";
import { loadDevConfig, loadPonderMemory, orExit, readLocalDefaults, repoRoot } from "../lib/config";
import { connect, type Deployment, deploy, vault } from "../lib/contracts";
import { startAnvil, stopChild } from "../lib/local/anvil";
import {
  DEMO_NAMES,
  type DemoDeveloper,
  demoDeveloper,
  demoRegister,
  deploymentFile,
  mailServer,
  notOnThisMachine,
  readDeployment,
} from "../lib/local/demo";
import { startMailCatcher } from "../lib/local/mail-catcher";
import { startPostgres } from "../lib/local/postgres";
import { ponderAnswering, ponderCommand, sidecarCommand } from "../lib/local/process";
import { ponderReady } from "../lib/local/stack";
import { waitFor } from "../lib/wait";
import { createDevelopersTable } from "../sidecar/db/developers-table";
import { createLogger } from "../sidecar/log";

// Local defaults, then anything the developer exported on top.
const env = { ...readLocalDefaults(), ...process.env } as Record<string, string>;
const config = orExit(() => loadDevConfig(env));
// A DATABASE_URL or RPC_URL exported in this shell for another machine (a staging database) would
// reach Ponder and the sidecar, not the PostgreSQL and anvil started here: the sidecar would take
// that database's developers table and welcome jobs. Refused before anything starts.
const remote = notOnThisMachine(config, env);
if (remote) {
  process.stderr.write(
    `stakesync dev: ${remote} points to another machine (exported in this shell?): npm run dev runs only on this machine's PostgreSQL and anvil; unset it\n`,
  );
  process.exit(1);
}
// A terminal that went away (its window closed, `script` killed) turns every write into an EIO
// error. Writing on would raise one error per line, each reported by another write: a busy loop
// that kept a stack at full CPU. Stop writing, and stop the stack, as a terminal hang-up does.
let terminalGone = false;
const print = (text: string) => {
  if (!terminalGone) process.stdout.write(text);
};
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", () => {
    terminalGone = true;
    void stop(0);
  });
}
const say = (line: string) => print(`[dev] ${line}\n`);
mkdirSync(config.dataDir, { recursive: true });
/** A path as the developer reads it: relative inside the repository, absolute outside. */
const shortPath = (file: string) => (file.startsWith(repoRoot) ? path.relative(repoRoot, file) || "." : file);
const shown = shortPath(config.dataDir);

// What has started, stopped in reverse order: by SIGTERM, or when start-up fails half-way (one
// line says why, and no PostgreSQL or anvil is left running behind it).
const started: { name: string; stop: () => Promise<unknown> }[] = [];
let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  say("stopping…");
  for (const part of started.reverse()) {
    await part.stop().catch((error: Error) => say(`${part.name} did not stop cleanly: ${error.message}`));
  }
  if (code === 0) say(`stopped; \`npm run dev\` resumes from ${shown}/ (delete it to start over)`);
  // Whatever was still starting when the stop came (a PostgreSQL or anvil not yet in `started`)
  // is in this process group: it goes too, rather than hold a port for the next run.
  process.removeAllListeners("SIGTERM");
  process.on("SIGTERM", () => process.exit(code));
  setTimeout(() => process.exit(code), 1000);
  try {
    process.kill(-process.pid, "SIGTERM");
  } catch {
    process.exit(code); // not a group leader: run on its own, not by the launcher
  }
}
// Orphaned (the launcher was killed): stop rather than run on unseen.
const launcher = process.ppid;
setInterval(() => {
  if (process.ppid !== launcher) void stop(0);
}, 1000).unref();
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));
process.on("uncaughtException", (error) => {
  if (stopping) return;
  say(`failed: ${error.message}`);
  void stop(1);
});
process.on("unhandledRejection", (error) => {
  if (stopping) return;
  say(`failed: ${(error as Error).message ?? error}`);
  void stop(1);
});

const pgPort = Number(new URL(config.database.url).port);
say(`starting PostgreSQL on 127.0.0.1:${pgPort} (data in ${shown}/postgres)`);
const postgres = await startPostgres({
  dataDir: path.join(config.dataDir, "postgres"),
  port: pgPort,
  database: new URL(config.database.url).pathname.slice(1),
});
started.push({ name: "PostgreSQL", stop: () => postgres.stop() });

const rpcPort = Number(new URL(config.rpcUrl).port);
const BLOCK_SECONDS = 1;
say(`starting anvil on 127.0.0.1:${rpcPort}, ${BLOCK_SECONDS} s blocks (state in ${shown}/anvil-state.json)`);
const anvil = await startAnvil({
  port: rpcPort,
  chainId: config.chainId,
  blockTime: BLOCK_SECONDS,
  stateFile: path.join(config.dataDir, "anvil-state.json"),
});
// SIGINT: anvil writes its state file on the way out.
started.push({ name: "anvil", stop: () => anvil.stop() });

const deployment = await deployOnce();
env.STAKE_VAULT_ADDRESS = deployment.stakeVault;
env.START_BLOCK = String(deployment.blockNumber);

// Without SMTP_URL, welcome emails go to a local catcher: printed here, kept as .eml files.
const catcher = config.smtpUrl
  ? undefined
  : await startMailCatcher({
      port: config.smtpPort,
      dir: path.join(config.dataDir, "mail"),
      onMail: (mail) =>
        print(`[mail] caught "${mail.subject}" for wallet ${mail.wallet ?? "?"}: ${shortPath(mail.file)}\n`),
    });
if (catcher) {
  started.push({ name: "mail catcher", stop: () => catcher.close() });
  env.SMTP_URL = catcher.url;
  env.MAIL_FROM = "stakesync dev <stakesync@localhost>";
}

function launch(name: string, args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const prefix = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) print(`[${name}] ${line}\n`);
  };
  child.stdout?.on("data", prefix);
  child.stderr?.on("data", prefix);
  child.once("exit", (code, signal) => {
    if (!stopping) say(`${name} exited (${signal ?? code}); Ctrl-C to stop the rest`);
  });
  return child;
}

const ponder = ponderCommand(
  orExit(() => loadPonderMemory(env)),
  ["dev", "--disable-ui", "--schema", config.database.schema, "--port", String(config.ponderPort)],
);
const ponderChild = launch("ponder", ponder.args, ponder.env);
// SIGINT: Ponder then releases its schema lock. Both stop before anvil and PostgreSQL.
started.push({ name: "Ponder", stop: () => stopChild(ponderChild, "SIGINT") });
// The sidecar once Ponder answers, as `npm start` does: no indexer_down while Ponder builds.
await ponderAnswering(`http://127.0.0.1:${config.ponderPort}`, ponderChild);
if (stopping) await new Promise(() => undefined); // stop() exits the process
const sidecarChild = launch("sidecar", await sidecarCommand());
started.push({ name: "the sidecar", stop: () => stopChild(sidecarChild, "SIGTERM") });

await waitFor("ponder", () => ponderReady(`http://127.0.0.1:${config.ponderPort}`), {
  timeoutMs: 300_000,
  intervalMs: 500,
}).catch((error) => say(`ponder is not ready yet: ${error.message}`));
if (!stopping) {
  say("ready:");
  say(`  GraphQL   http://localhost:${config.ponderPort}/graphql`);
  say(`  SQL       http://localhost:${config.ponderPort}/sql/*`);
  say(`  sidecar   http://localhost:${config.sidecarPort}/  (status page)`);
  say(
    `  database  ${postgres.url}  (Ponder schema "${config.database.schema}", table ${config.developersTable.schema}.${config.developersTable.table})`,
  );
  say(`  chain     ${anvil.rpcUrl}  StakeVault ${deployment.stakeVault}  MockUSDC ${deployment.token}`);
  say(
    `  email     ${config.smtpUrl ? mailServer(config.smtpUrl) : `caught locally, printed here as [mail] and kept in ${shown}/mail/`}`,
  );
  say("try:");
  say("  npx stakesync demo register frank && npx stakesync demo stake frank 25");
  say("  npx stakesync demo unstake dave 15 · npx stakesync demo slash bob 10 · npx stakesync demo --help");
  say("  npx stakesync verify --local");
}

/** Reuses the deployment while the chain still has its code; otherwise deploys and seeds. */
async function deployOnce(): Promise<Deployment> {
  const clients = await connect(anvil.rpcUrl);
  if (existsSync(deploymentFile(config))) {
    const saved = readDeployment(config);
    const code = await clients.publicClient.getCode({ address: saved.stakeVault });
    if (code && code !== "0x") {
      say(`StakeVault ${saved.stakeVault} already deployed at block ${saved.blockNumber}`);
      return saved;
    }
  }
  // Each transaction mined as it is sent, not at the next block: the deployment's two transactions
  // and the seed's eight took 10 s of a first start. Then blocks come every BLOCK_SECONDS again.
  const anvilRpc = (method: string, params: unknown[]) =>
    clients.publicClient.request({ method: method as never, params: params as never });
  await anvilRpc("evm_setAutomine", [true]);
  let fresh: Deployment;
  try {
    fresh = await deploy(clients);
    say(`deployed MockUSDC ${fresh.token} and StakeVault ${fresh.stakeVault} at block ${fresh.blockNumber}`);
    await seedDemo(fresh);
  } catch (error) {
    // anvil may be gone already (a Ctrl-C during the seed): the error that stopped the start is the one to tell.
    await anvilRpc("evm_setIntervalMining", [BLOCK_SECONDS]).catch(() => undefined);
    throw error;
  }
  await anvilRpc("evm_setIntervalMining", [BLOCK_SECONDS]);
  // Recorded once seeded: a first start stopped half-way deploys and seeds afresh the next time
  // (registering is idempotent), where it used to resume with a vault half seeded.
  writeFileSync(deploymentFile(config), `${JSON.stringify(fresh, null, 2)}\n`);
  return fresh;
}

/** Five registered demo developers; stakes for three, a stake and unstake by dave, a slash of bob. */
async function seedDemo(deployment: Deployment) {
  const names = DEMO_NAMES.slice(0, 5);
  const developers = names.map((name) => demoDeveloper(name));
  await createDevelopersTable(postgres.url, createLogger("warn"), config.developersTable);
  await demoRegister(
    config,
    developers.map((d) => ({ wallet: d.wallet, email: `${d.name}@example.test` })),
  );
  const [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map((name) => demoDeveloper(name)) as [
    DemoDeveloper,
    DemoDeveloper,
    DemoDeveloper,
    DemoDeveloper,
  ];
  const owner = vault(await connect(anvil.rpcUrl), deployment);
  await owner.fund(parseUnits("1000", 6));
  await owner.stakeForMany(
    [alice.wallet, bob.wallet, carol.wallet],
    [parseUnits("100", 6), parseUnits("50", 6), parseUnits("12.5", 6)],
  );
  await owner.slash(bob.wallet, parseUnits("10", 6));
  const daveVault = vault(await connect(anvil.rpcUrl, dave.key), deployment);
  await daveVault.fund(parseUnits("20", 6));
  await daveVault.stake(parseUnits("20", 6));
  await daveVault.unstake(parseUnits("5", 6));
  say(
    `registered ${names.join(", ")}; staked for alice, bob, carol; slashed bob 10; dave staked 20 and unstaked 5; erin has no stake`,
  );
}

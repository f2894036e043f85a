/**
 * Adopting stakesync on a live table (README "Adopting stakesync"): the original listener has
 * written `developers` for a while, getting repeated stakes, unstakes, a reorg and a stake before
 * signup wrong. stakesync runs beside it in shadow mode, `stakesync plan` names those rows, the
 * old listener stops, stakesync switches to write mode: the table equals stakeOf(), nobody the old
 * system activated is emailed, and a stake made during the switch is neither lost nor unwelcomed.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, expect, it, onTestFinished } from "vitest";
import { repoRoot } from "../lib/config";
import { anvilKeys, connect, vault } from "../lib/contracts";
import { waitFor } from "../lib/wait";
import { ensureDevelopersTable } from "../sidecar/db/developers-table";
import { startOriginalListener } from "./helpers/original-listener";
import { startSmtp } from "./helpers/peers";
import {
  chainEnv,
  childEnv,
  cleanup,
  developer,
  freshDatabase,
  type SidecarProcess,
  sql,
  startChain,
  startPonder,
  startSidecar,
  waitIndexedToHead,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

afterAll(cleanup);

const USDC = 1_000_000n;

it("shadow beside the old listener, a plan naming its mistakes, then a cut-over with no email flood and no gap", async () => {
  const chain = await startChain();
  await chain.vault.fund(10n ** 12n);
  const databaseUrl = await freshDatabase();
  const smtp = await startSmtp();
  // However the test ends: a vitest worker runs other files next (vitest.config.ts).
  onTestFinished(() => smtp.close());
  const [summed, orphaned, beforeSignup, agreed, idle, duringShadow, duringSwitch] = wallets(7, "adopt");
  const [unstakerKey] = anvilKeys(1) as [`0x${string}`];
  const unstaker = vault(await connect(chain.rpcUrl, unstakerKey), chain.deployment);
  const unstakerWallet = (await connect(chain.rpcUrl, unstakerKey)).wallet.account.address.toLowerCase();

  // The application's table, and its developers signed up (all but one) before any stake.
  const setup = new (await import("pg")).default.Client({ connectionString: databaseUrl });
  await setup.connect();
  await setup.query("BEGIN");
  await ensureDevelopersTable(setup, { schema: "public", table: "developers", sql: "public.developers" });
  await setup.query("COMMIT");
  await setup.end();
  const register = (wallet: string) =>
    sql(databaseUrl, "INSERT INTO developers (wallet_address, email) VALUES ($1, $2)", [
      wallet,
      `${wallet.slice(2, 10)}@example.test`,
    ]);
  for (const w of [summed, orphaned, agreed, idle, duringShadow, duringSwitch, unstakerWallet])
    await register(w as string);

  // A year of the original listener, compressed.
  const old = startOriginalListener({
    rpcUrl: chain.rpcUrl,
    vault: chain.deployment.stakeVault,
    fromBlock: chain.deployment.blockNumber,
    databaseUrl,
  });
  onTestFinished(() => old.stop());
  const oldCaughtUp = async () => {
    const head = Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    await waitFor("the old listener at the head", () => old.state.processedTo >= head - 1);
  };
  await chain.vault.stakeFor(summed as `0x${string}`, 10n * USDC);
  await chain.vault.stakeFor(summed as `0x${string}`, 5n * USDC); // it keeps 5, not 15
  await unstaker.fund(20n * USDC);
  await unstaker.stake(20n * USDC);
  await unstaker.unstake(20n * USDC); // it never sees unstakes
  await chain.vault.stakeFor(agreed as `0x${string}`, 50n * USDC);
  await chain.vault.stakeFor(beforeSignup as `0x${string}`, 40n * USDC); // dropped: no row yet
  await mine(chain, 2);
  await oldCaughtUp();
  await register(beforeSignup as string);
  // A stake the old listener applied, then a reorg deeper than its one confirmation took back.
  const snapshot = await chain.publicClient.request({ method: "evm_snapshot" as never });
  await chain.vault.stakeFor(orphaned as `0x${string}`, 30n * USDC);
  await mine(chain, 3);
  await waitFor(
    "the old listener to apply the doomed stake",
    async () => (await developer(databaseUrl, orphaned as string))?.status === "active",
  );
  await chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
  await mine(chain, 10);
  await oldCaughtUp();

  // stakesync beside it, in shadow mode. EFFECTS_FROM_BLOCK: activations by stakes from now on
  // are welcomed; older ones, which the old system had its chance to welcome, are not.
  const shadowFrom = Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 })) + 1;
  const env = {
    ...chainEnv([chain]),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: "adopt_ponder",
  };
  const ponder = await startPonder(env);
  await ponder.waitReady();
  const sidecarEnv = {
    ...env,
    PONDER_URL: ponder.url,
    SMTP_URL: smtp.url,
    MAIL_FROM: "stakesync <welcome@stakesync.test>",
    EFFECTS_FROM_BLOCK: String(shadowFrom),
  };
  const tableBefore = await sql(databaseUrl, "SELECT * FROM developers ORDER BY wallet_address");
  let sidecar: SidecarProcess = await startSidecar({ ...sidecarEnv, SIDECAR_MODE: "shadow" });
  // A developer the old listener activates while stakesync shadows it: active under both.
  await chain.vault.stakeFor(duringShadow as `0x${string}`, 7n * USDC);
  await mine(chain, 3);
  await oldCaughtUp();
  await waitIndexedToHead(databaseUrl, "adopt_ponder", chain);
  const head = Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  type ShadowStatus = { mode: string; chains: { synced: number }[]; developers: { differing?: number } };
  let seen: ShadowStatus | undefined;
  await waitFor(
    "the shadow sidecar synced to the confirmed block",
    async () => {
      seen = (await (await fetch(`${sidecar.url}/status`)).json()) as ShadowStatus;
      return (seen.chains[0]?.synced ?? 0) >= head - 2 && seen.developers.differing === 4;
    },
    { timeoutMs: 60_000 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last /status: ${JSON.stringify(seen)}`);
  });

  // Shadow wrote nothing to developers (but what the old listener wrote) and sent nothing.
  const rowsNow = await sql<{ wallet_address: string }>(
    databaseUrl,
    "SELECT * FROM developers ORDER BY wallet_address",
  );
  const untouched = (rows: Record<string, unknown>[]) => rows.filter((r) => r.wallet_address !== duringShadow);
  expect(untouched(rowsNow)).toEqual(untouched(tableBefore));
  expect(smtp.mails).toEqual([]);
  expect(await sql(databaseUrl, "SELECT count(*)::int AS n FROM stakesync.audit")).toEqual([{ n: 0 }]);
  expect((await sidecar.status()) as unknown as ShadowStatus).toMatchObject({ mode: "shadow" });
  expect(await (await fetch(`${sidecar.url}/metrics`)).text()).toMatch(/^stakesync_developers_differing 4$/m);
  expect(await (await fetch(sidecar.url)).text()).toContain("shadow mode: writes nothing to developers");

  // The plan names each row the old listener got wrong, and why; nobody would be welcomed.
  const plan = (args: string[]) =>
    spawnSync(process.execPath, [path.join(repoRoot, "bin", "stakesync.js"), "plan", ...args], {
      cwd: repoRoot,
      env: childEnv(sidecarEnv),
      encoding: "utf8",
      timeout: 60_000,
    });
  const text = plan([]);
  expect(text.status, text.stderr).toBe(1);
  expect(text.stdout).toContain(`${summed}  stake_amount  5 → 15  (stake summed where the old listener overwrote)`);
  expect(text.stdout).toContain(`${unstakerWallet}  status        active → inactive  (unstake or slash not applied)`);
  expect(text.stdout).toContain(`${orphaned}  status        active → inactive  (stake orphaned by a reorg)`);
  expect(text.stdout).toContain(`${beforeSignup}  status        pending → active  (stake before signup)`);
  expect(text.stdout).toContain(
    `${beforeSignup}  no welcome email: activated before EFFECTS_FROM_BLOCK, or by another system (historic)`,
  );
  expect(text.stdout).toMatch(
    /^PLAN: 4 developer row\(s\) would change at \d+@\d+; 0 welcome email\(s\) would be sent, 1 skipped$/m,
  );
  const json = JSON.parse(plan(["--json"]).stdout) as { changes: { wallet: string }[]; welcomed: number };
  expect(json.changes.map((c) => c.wallet).sort()).toEqual([summed, orphaned, beforeSignup, unstakerWallet].sort());
  expect(json.welcomed).toBe(0);

  // The cut-over: stop the old listener; a stake lands before stakesync writes; switch the mode.
  await old.stop();
  await chain.vault.stakeFor(duringSwitch as `0x${string}`, 8n * USDC);
  await mine(chain, 3);
  await sidecar.stop();
  sidecar = await startSidecar({ ...sidecarEnv, SIDECAR_MODE: "write" });
  await sidecar.waitSynced(chain, databaseUrl, "adopt_ponder");

  // developers equals stakeOf() at the confirmed block, row by row.
  for (const w of [summed, orphaned, beforeSignup, agreed, idle, duringShadow, duringSwitch, unstakerWallet]) {
    const onChain = await chain.vault.stakeOf(w as `0x${string}`);
    const row = await developer(databaseUrl, w as string);
    expect(BigInt(Math.round(Number(row?.stake_amount) * 1e6)), w).toBe(onChain);
    expect(row?.status, w).toBe(onChain > 0n ? "active" : w === idle ? "pending" : "inactive");
  }
  // One welcome email: the developer whose stake landed in the switch, whom the old system never saw.
  await waitFor("the welcome email of the stake made during the switch", () => smtp.mails.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 2000)); // any second one would be sent by now
  expect(smtp.mails.map((m) => m.to)).toEqual([[`${(duringSwitch as string).slice(2, 10)}@example.test`]]);
  const jobs = await sql(databaseUrl, "SELECT wallet, state, skip_reason FROM stakesync.outbox ORDER BY wallet");
  expect(jobs).toEqual(
    [
      { wallet: beforeSignup, state: "skipped", skip_reason: "historic" },
      { wallet: duringSwitch, state: "sent", skip_reason: null },
    ].sort((a, b) => (a.wallet as string).localeCompare(b.wallet as string)),
  );
  expect(plan([]).status).toBe(0);
}, 300_000);

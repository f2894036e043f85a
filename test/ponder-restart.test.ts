/**
 * A Ponder restart is not a reorg. `ponder start` on an existing schema runs crash recovery: it
 * deletes every unfinalized row and leaves `_ponder_checkpoint` where it was until its first batch,
 * which behind a slow RPC comes many seconds later. The sidecar must change nothing meanwhile.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { waitFor } from "../lib/wait";
import { type Alert, startRpcProxy, startWebhook } from "./helpers/peers";
import {
  chainEnv,
  cleanup,
  freshDatabase,
  type PonderProcess,
  type SidecarProcess,
  sql,
  startChain,
  startPonder,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

const SCHEMA = "restart_ponder";
let chain: TestChain;
let databaseUrl: string;
let rpc: Awaited<ReturnType<typeof startRpcProxy>>;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
let ponderEnv: Record<string, string>;
let ponder: PonderProcess;
let sidecar: SidecarProcess;

beforeAll(async () => {
  chain = await startChain();
  await chain.vault.fund(10n ** 12n);
  databaseUrl = await freshDatabase();
  [rpc, webhook] = await Promise.all([startRpcProxy(chain.rpcUrl), startWebhook()]);
  const common = { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: SCHEMA };
  // Ponder reads the chain through the proxy, which can turn into a slow provider; on one lane,
  // the default, as in the production case the review found.
  ponderEnv = { ...chainEnv([chain], { RPC_URL: rpc.url, RPC_LANES: "1" }), ...common };
  ponder = await startPonder(ponderEnv);
  await ponder.waitReady();
  sidecar = await startSidecar({
    ...chainEnv([chain]),
    ...common,
    CONFIRMATIONS: "2",
    // Reconciliation runs all the time too: it must not act on a recovering Ponder either.
    RECONCILE_INTERVAL_MS: "1000",
    ALERT_WEBHOOK_URL: webhook.url,
  });
});
afterAll(async () => {
  await cleanup();
  rpc?.close();
  webhook?.close();
});

type Row = { wallet: string; status: string; stake_amount: string; staked_at: Date | null };
const rows = (developers: string[]) =>
  sql<Row>(
    databaseUrl,
    `SELECT lower(wallet_address) AS wallet, status, stake_amount::text, staked_at
       FROM developers WHERE lower(wallet_address) = ANY($1) ORDER BY 1`,
    [developers],
  );
const auditCount = async () =>
  Number((await sql<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM stakesync.audit"))[0]?.n);

it("changes no developer, writes no audit row and raises no alert while a restarted Ponder recovers behind a slow RPC", async () => {
  const developers = wallets(3, "restart");
  for (const wallet of developers) {
    await sql(databaseUrl, "INSERT INTO developers (wallet_address) VALUES ($1)", [wallet]);
    await chain.vault.stakeFor(wallet, 100_000_000n);
  }
  await mine(chain, 3); // confirmed, and well inside Ponder's 30 unfinalized blocks
  await sidecar.waitSynced(chain, databaseUrl, SCHEMA);
  const before = await rows(developers);
  expect(before.map((r) => r.status)).toEqual(["active", "active", "active"]);
  const auditBefore = await auditCount();

  // A graceful restart, as a deploy or a process manager does it (scripts/start.ts gives Ponder
  // SIGINT, which releases its schema lock), onto a provider now slow.
  ponder.process.kill("SIGINT");
  await ponder.exited;
  rpc.state.delayMs = 5000; // below viem's 10 s timeout: slow, not failing
  ponder = await startPonder(ponderEnv);

  // Crash recovery has deleted the stakes while the checkpoint still vouches for their blocks…
  await waitFor(
    "crash recovery to delete the unfinalized stakes",
    async () =>
      (await sql(databaseUrl, `SELECT 1 FROM ${SCHEMA}.stake_event WHERE developer = ANY($1)`, [developers])).length ===
      0,
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  // …and stays that way for seconds (the old sidecar acted after 2 s): nothing may change.
  const holdUntil = Date.now() + 8000;
  while (Date.now() < holdUntil) {
    expect(await rows(developers)).toEqual(before);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const [{ gone } = { gone: false }] = await sql<{ gone: boolean }>(
    databaseUrl,
    `SELECT NOT EXISTS (SELECT 1 FROM ${SCHEMA}.stake_event WHERE developer = ANY($1)) AS gone`,
    [developers],
  );
  expect(gone, "the window in which Ponder's rows were missing lasted through the hold").toBe(true);

  // The provider recovers; Ponder re-indexes; the sidecar carries on from where it was.
  rpc.state.delayMs = 0;
  await ponder.waitReady();
  await mine(chain, 1);
  await sidecar.waitSynced(chain, databaseUrl, SCHEMA);
  expect(await rows(developers)).toEqual(before);
  expect(await auditCount()).toBe(auditBefore);
  expect(webhook.alerts.filter((a: Alert) => a.rule === "reorg_correction")).toEqual([]);
  const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
  expect(metrics).toMatch(/^stakesync_reorg_corrections_total 0$/m);
});

/**
 * A reorg deeper than CONFIRMATIONS that happens, and is finalized by Ponder, while no sidecar is
 * stepping: every applied event is compared with Ponder before the ledger forgets it.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { waitFor } from "../lib/wait";
import { startWebhook } from "./helpers/peers";
import {
  cleanup,
  developer,
  type SidecarProcess,
  sql,
  startIndexedChain,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { mine, mineUntil, wallets } from "./helpers/workload";

const SCHEMA = "offline_reorg";
const USDC = 1_000_000n;
let chain: TestChain;
let databaseUrl: string;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
let sidecarEnv: Record<string, string>;
let sidecar: SidecarProcess;

beforeAll(async () => {
  webhook = await startWebhook();
  let env: Record<string, string>;
  ({ chain, databaseUrl, env } = await startIndexedChain(SCHEMA));
  // No reconciliation during the test: the correction must come from the sync itself.
  sidecarEnv = { ...env, CONFIRMATIONS: "2", RECONCILE_INTERVAL_MS: "600000", ALERT_WEBHOOK_URL: webhook.url };
  sidecar = await startSidecar(sidecarEnv);
});
afterAll(async () => {
  await cleanup();
  webhook?.close();
});

const finalizedBlock = async () =>
  Number(
    (
      await sql<{ block: string }>(
        databaseUrl,
        `SELECT substring(finalized_checkpoint from 27 for 16) AS block FROM ${SCHEMA}._ponder_checkpoint`,
      )
    )[0]?.block ?? -1,
  );

it("corrects at once, audited as reorg and alerted, when the sidecar starts after Ponder finalized past the reorg", async () => {
  const [wallet] = wallets(1, "offline-reorg") as [`0x${string}`];
  await sql(databaseUrl, "INSERT INTO developers (wallet_address) VALUES ($1)", [wallet]);
  const snapshot = await chain.publicClient.request({ method: "evm_snapshot" as never });
  const orphan = await chain.vault.stakeFor(wallet, 30n * USDC);
  await mine(chain, 3);
  await sidecar.waitSynced(chain, databaseUrl, SCHEMA);
  expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "active", stake_amount: "30.000000" });

  await sidecar.stop();
  await chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
  await chain.vault.stakeFor(wallet, 12n * USDC); // the new fork's stake
  // Ponder finalizes in jumps (head − 30 once the head is 60 past it): well past the orphan.
  await mine(chain, 100);
  await waitFor(
    "Ponder to finalize past the orphaned stake",
    async () => (await finalizedBlock()) > Number(orphan.blockNumber),
    { timeoutMs: 60_000, intervalMs: 250 },
  );

  sidecar = await startSidecar(sidecarEnv);
  await mineUntil(
    chain,
    "the correction",
    async () => (await developer(databaseUrl, wallet))?.stake_amount === "12.000000",
  );
  const trail = await sql<{ reason: string; new_amount: string }>(
    databaseUrl,
    "SELECT reason, new_amount::text FROM stakesync.audit WHERE wallet = $1 ORDER BY id",
    [wallet],
  );
  expect(trail.map((r) => `${r.reason} ${r.new_amount}`)).toEqual(["stake 30.000000", "reorg 12.000000"]);
  await waitFor("the reorg_correction alert", () =>
    webhook.alerts.some((a) => a.rule === "reorg_correction" && a.state === "firing"),
  );
});

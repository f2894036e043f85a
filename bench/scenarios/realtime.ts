/**
 * Scenario (d): realtime latency, 1 s blocks and stakes spread over time, from the block seen on
 * the node to the developers row, with Ponder alone (to its stake_event row) in the same run.
 */
import pg from "pg";
import { type Address, createPublicClient, webSocket } from "viem";
import { StakeVaultAbi } from "../../abis/StakeVault";
import { connect, deploy, vault } from "../../lib/contracts";
import { ponderAnswering } from "../../lib/local/process";
import { ponderReady } from "../../lib/local/stack";
import { queryOnce as query } from "../../lib/query-once";
import { waitFor } from "../../lib/wait";
import { prepareApplication } from "../application";
import { type Lab, workloadEnv } from "../lab";
import { summary } from "../stats";
import { developerWallets, type Workload } from "../workload";
import { alertsFired } from "./full-pipeline";

const LOOK_UP_AFTER_MS = 300;

/** (d) 1 s blocks, stakes spread over time; block seen on ws → developers row committed, CONFIRMATIONS=0. */
export async function realtime(lab: Lab, mode: "ws" | "polling", stakes: number) {
  const anvil = await lab.startAnvil({ blockTime: 1 });
  const clients = await connect(anvil.rpcUrl);
  const deployment = await deploy(clients);
  const owner = vault(clients, deployment);
  await owner.fund(10n ** 15n);
  const url = await lab.freshDatabase();
  const wallets = developerWallets(stakes, `realtime-${mode}`);
  await prepareApplication(url, { developers: wallets, truth: {} } as unknown as Workload);
  const env = workloadEnv(
    anvil,
    { deployment },
    {
      DATABASE_URL: url,
      CONFIRMATIONS: "0",
      ...(mode === "ws" ? { WS_URL: anvil.wsUrl } : {}),
    },
  );
  const ponder = await lab.startPonder(env, `rt_${mode}`);
  // Once Ponder answers, as `npm start` and the backfill scenarios start it: started together on a
  // busy machine, Ponder's build took over 30 s and the sidecar paged indexer_down (INDEXER_DOWN_AFTER_MS)
  // before the measurement began.
  if (!(await ponderAnswering(ponder.url, ponder.process))) throw new Error("ponder exited before answering");
  const sidecar = await lab.startSidecar(
    { ...env, DATABASE_SCHEMA: `rt_${mode}`, PONDER_URL: ponder.url },
    `sidecar-rt-${mode}`,
  );
  await waitFor("ponder", () => ponderReady(ponder.url), { timeoutMs: 120_000 });
  // Warm up: Ponder takes a few seconds after /ready to start indexing live blocks.
  const [warmup] = developerWallets(1, `warmup-${mode}`) as [Address];
  await query(url, "INSERT INTO developers (wallet_address) VALUES ($1)", [warmup]);
  await owner.stakeFor(warmup, 1n);
  await waitFor(
    "the pipeline to be live",
    async () => {
      const rows = await query(url, "SELECT 1 FROM developers WHERE wallet_address = $1 AND stake_amount > 0", [
        warmup,
      ]);
      return rows.length === 1;
    },
    { timeoutMs: 60_000 },
  );

  const seenBlock = new Map<number, number>();
  const ws = createPublicClient({ transport: webSocket(anvil.wsUrl, { reconnect: false }) });
  const unwatch = ws.watchBlockNumber({
    emitMissed: true,
    onBlockNumber: (n) => seenBlock.set(Number(n), performance.now()),
  });
  // The ws subscription can skip a block; a 10 ms eth_blockNumber poll fills in (first sighting wins).
  const poller = setInterval(async () => {
    const n = Number(await clients.publicClient.getBlockNumber({ cacheTime: 0 }).catch(() => -1));
    for (let b = n; b > 0 && !seenBlock.has(b); b--) seenBlock.set(b, performance.now());
  }, 10);
  await waitFor("the block watcher", () => seenBlock.size > 0, { timeoutMs: 10_000 });
  const db = new pg.Client({ connectionString: url });
  await db.connect();

  const blockOf = new Map<string, number>();
  const committedAt = new Map<string, number>();
  // Ponder alone, in the same run: when the stake's row is in stake_event. The pipeline adds the
  // time from there to the developers row.
  const indexedAt = new Map<string, number>();
  // Both instants are taken when PostgreSQL delivers a notification, which it does at commit: Ponder
  // NOTIFYs "<schema>_live_query" in each block's transaction, and the application's trigger
  // below NOTIFYs a developers row that gets a stake. Until 2026-12-04 a 5 ms poll of both
  // tables took them: it saw each up to a poll late, and queried every few milliseconds on the two
  // cores it measured. In one run with both (300 stakes each way), the poll's figures for what the
  // sidecar adds were 1 to 6 ms higher at p50, p95 and p99.
  await db.query(`
    CREATE OR REPLACE FUNCTION bench_developer_staked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('bench_developer_staked', lower(NEW.wallet_address)); RETURN NULL; END $$;
    CREATE TRIGGER bench_developer_staked AFTER INSERT OR UPDATE OF stake_amount ON developers
      FOR EACH ROW WHEN (NEW.stake_amount > 0) EXECUTE FUNCTION bench_developer_staked();`);
  const ponderChannel = `rt_${mode}_live_query`;
  const waiting = new Set(wallets.map((w) => w.toLowerCase()));
  // A Ponder commit is looked up after its notification: the rows it brought get that
  // notification's instant (the first since the last look-up began, whose snapshot lacked them).
  // The look-up waits LOOK_UP_AFTER_MS, so that it does not compete with the sidecar's round for
  // the two cores at the very moment it measures; blocks come a second apart, so by then no
  // later commit has brought rows of its own.
  let ponderCommitAt: number | undefined;
  let lookingUp: Promise<void> = Promise.resolve();
  // Set once every stake is seen: a commit of Ponder's notified after that (its next block) is
  // looked up no more. Its look-up, 300 ms later, ran after db.end() and crashed the bench.
  let measured = false;
  const lookUp = () =>
    (lookingUp = lookingUp.then(async () => {
      const at = ponderCommitAt;
      ponderCommitAt = undefined;
      if (at === undefined || measured) return;
      const pendingWallets = [...waiting].filter((w) => !indexedAt.has(w));
      const { rows } = await db.query<{ w: string }>(
        `SELECT w FROM unnest($1::text[]) AS w WHERE EXISTS (SELECT 1 FROM "rt_${mode}".stake_event e WHERE e.developer = w)`,
        [pendingWallets],
      );
      for (const { w } of rows) indexedAt.set(w, at);
    }));
  db.on("notification", ({ channel, payload }) => {
    const now = performance.now();
    if (channel === ponderChannel) {
      ponderCommitAt ??= now;
      setTimeout(lookUp, LOOK_UP_AFTER_MS);
    } else if (payload && waiting.has(payload) && !committedAt.has(payload)) {
      committedAt.set(payload, now);
    }
  });
  await db.query(`LISTEN "${ponderChannel}"; LISTEN bench_developer_staked`);
  const perBlock = 3;
  // One sender, so sends are sequential (each takes the pending nonce); receipts are awaited later.
  const sending = (async () => {
    const receipts: Promise<void>[] = [];
    for (const w of wallets) {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * (2000 / perBlock)));
      const hash = await clients.wallet.writeContract({
        address: deployment.stakeVault,
        abi: StakeVaultAbi,
        functionName: "stakeFor",
        args: [w as Address, 1_000_000n],
      });
      receipts.push(
        clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100 }).then((r) => {
          blockOf.set(w.toLowerCase(), Number(r.blockNumber));
        }),
      );
    }
    await Promise.all(receipts);
  })();
  await waitFor("every stake's developers row", async () => committedAt.size === waiting.size, {
    timeoutMs: 120_000 + wallets.length * 2_000,
  }).catch((error: Error) => {
    throw new Error(`${error.message}: ${committedAt.size} of ${waiting.size} seen`);
  });
  // The last notification's look-up, still waiting its turn.
  await new Promise((resolve) => setTimeout(resolve, LOOK_UP_AFTER_MS + 50));
  await lookingUp;
  measured = true;
  await lookingUp; // one begun meanwhile ends before db.end()
  await sending;
  unwatch();
  clearInterval(poller);
  (await ws.transport.getRpcClient()).close();
  await db.end();
  const sinceBlock = (at: Map<string, number>) =>
    [...at]
      .map(([w, t]) => t - (seenBlock.get(blockOf.get(w) ?? -1) ?? Number.NaN))
      .filter((ms) => Number.isFinite(ms))
      .sort((a, b) => a - b);
  const latencies = sinceBlock(committedAt);
  const ponderLatencies = sinceBlock(indexedAt);
  // A stake whose stake_event row no notification announced is left out, and counted.
  const added = [...committedAt]
    .filter(([w]) => indexedAt.has(w))
    .map(([w, t]) => t - (indexedAt.get(w) as number))
    .sort((a, b) => a - b);
  const sidecarAlerts = alertsFired(sidecar);
  await Promise.all([ponder.stop(), sidecar.stop()]);
  await lab.stopAnvil(anvil);
  return {
    mode,
    sidecarAlerts,
    samples: latencies.length,
    ...summary(latencies),
    /** Ponder alone: block seen → its stake_event row. */
    ponder: summary(ponderLatencies),
    /** What the sidecar adds: stake_event row → developers row, per stake. */
    sidecarAdds: summary(added),
    /** Stakes whose stake_event row came with no notification of Ponder's (expected 0). */
    unannounced: committedAt.size - added.length,
  };
}

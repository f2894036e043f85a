/**
 * `npm run bench`: backfill throughput, realtime latency and memory of the full pipeline,
 * bare Ponder and the original design, on one generated chain. Self-contained like the tests:
 * its own anvil and embedded PostgreSQL. Prints a markdown table; writes bench/results/latest.json.
 *
 *   --events N (100000)  --developers D (10000)  --seed S  --realtime-stakes K (300)
 *   --repeat R (5)       runs of each (a)/(b) backfill but the default-RPC one; the median is reported
 *   --scale              also run the full pipeline at N/10 and 10·N
 *   --only a,b,c,d       run only these scenarios
 *   --out FILE           where the JSON goes (default bench/results/latest.json)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { type Address, createPublicClient, webSocket } from "viem";
import { StakeVaultAbi } from "../abis/StakeVault";
import { verify } from "../cli/verify";
import { loadSidecarConfig, repoRoot } from "../lib/config";
import { connect, deploy, vault } from "../lib/contracts";
import { type Anvil, startAnvil } from "../lib/local/anvil";
import { type LocalPostgres, startPostgres } from "../lib/local/postgres";
import { ponderAnswering, type RunningProcess, sidecarCommand } from "../lib/local/process";
import {
  chainEnv as localChainEnv,
  ponderReady,
  type Spawn,
  spawnNode,
  startPonder as startLocalPonder,
  startSidecar as startLocalSidecar,
} from "../lib/local/stack";
import { freePort } from "../lib/ports";
import { queryOnce as query } from "../lib/query-once";
import { waitFor } from "../lib/wait";
import { createDevelopersTable } from "../sidecar/db/developers-table";
import { createLogger } from "../sidecar/log";
import { runOriginalDesign } from "./baselines/original-design";
import { developerWallets, type Workload, workloadChain } from "./workload";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "100000" },
    developers: { type: "string", default: "10000" },
    seed: { type: "string", default: "stakesync" },
    "realtime-stakes": { type: "string", default: "300" },
    repeat: { type: "string", default: "5" },
    scale: { type: "boolean", default: false },
    only: { type: "string", default: "a,b,c,d" },
    out: { type: "string", default: path.join(repoRoot, "bench", "results", "latest.json") },
  },
});
const N = Number(args.events);
const D = Number(args.developers);
const only = new Set(args.only.split(","));
const REPEAT = Number(args.repeat);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const seconds = (ms: number) => Math.round(ms) / 1000;
const perSecond = (events: number, s: number) => Math.round(events / s);

/** Private-node RPC settings (README "Performance"): more lanes into Ponder's balancer. */
const PRIVATE_NODE = { RPC_LANES: "8" };

const dir = mkdtempSync(path.join(tmpdir(), "stakesync-bench-"));
// Durable (fsync on), as in production: per-event writes pay for it, as they would there.
const postgres: LocalPostgres = await startPostgres({
  dataDir: path.join(dir, "pg"),
  port: await freePort(),
  database: "bench",
});
// Built once, before any clock starts.
await sidecarCommand();
const logDir = path.join(repoRoot, "bench", ".cache", "logs");
mkdirSync(logDir, { recursive: true });
const running = new Set<RunningProcess>();
const anvils = new Set<Anvil>();
async function shutdown() {
  await Promise.all([...running].map((p) => p.kill()));
  await Promise.all([...anvils].map((a) => a.stop()));
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => shutdown().then(() => process.exit(130)));
// Children outlive a crashed parent: stop them on any crash too.
for (const event of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(event, (error) => {
    log(`crashed: ${(error as Error)?.stack ?? error}`);
    shutdown().finally(() => process.exit(1));
  });
}

/** Each process's output is kept in bench/.cache/logs/<name>.log, to see where time went. */
const start: Spawn = (name, args, env) => {
  const spawnedAt = Date.now();
  const proc = spawnNode(name, args, env);
  running.add(proc);
  proc.exited.then(() => {
    running.delete(proc);
    // The spawn time first (ms since the epoch, as in pino's "time"): startup shows in the log too.
    writeFileSync(path.join(logDir, `${name}.log`), `{"spawned_at":${spawnedAt}}\n${proc.output()}`);
  });
  return proc;
};

const chainEnv = (anvil: Anvil, workload: Pick<Workload, "deployment">, extra: Record<string, string> = {}) =>
  localChainEnv([{ chainId: 31337, rpcUrl: anvil.rpcUrl, deployment: workload.deployment }], extra);

let databases = 0;
const freshDatabase = () => postgres.createDatabase(`bench_${databases++}`);

const startPonder = async (env: Record<string, string>, schema: string) =>
  startLocalPonder(env, { schema, port: await freePort(), spawn: start });
const startSidecar = async (env: Record<string, string>, name: string) =>
  startLocalSidecar(env, { port: await freePort(), name, spawn: start });

/** (a) `ponder start` on a fresh schema until /ready. */
async function barePonder(env: Record<string, string>, schema: string) {
  const t0 = performance.now();
  const ponder = await startPonder(env, schema);
  await waitFor("ponder /ready", () => ponderReady(ponder.url), { timeoutMs: 3_600_000, intervalMs: 50 });
  const s = seconds(performance.now() - t0);
  const peakMb = ponder.peakRssMb();
  await ponder.stop();
  return { seconds: s, peakMb };
}

/** Registers every developer and loads the ground truth for the comparison query. */
async function prepareApplication(url: string, workload: Workload) {
  await createDevelopersTable(url, createLogger("warn"));
  await query(url, "CREATE TABLE IF NOT EXISTS bench_truth (wallet text PRIMARY KEY, amount numeric NOT NULL)");
  await query(url, "INSERT INTO developers (wallet_address) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", [
    workload.developers,
  ]);
  await query(url, "INSERT INTO bench_truth SELECT * FROM unnest($1::text[], $2::numeric[]) ON CONFLICT DO NOTHING", [
    Object.keys(workload.truth),
    Object.values(workload.truth),
  ]);
}

async function resetSidecar(url: string) {
  await query(
    url,
    `DROP SCHEMA IF EXISTS stakesync CASCADE;
     UPDATE developers SET status = 'pending', stake_amount = 0, staked_at = NULL`,
  );
}

/** Developers whose stake_amount differs from the ground truth. */
async function mismatches(db: pg.Client): Promise<number> {
  const {
    rows: [row],
  } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM developers d LEFT JOIN bench_truth t ON t.wallet = lower(d.wallet_address)
      WHERE d.stake_amount <> coalesce(t.amount, 0) / 1000000`,
  );
  return Number(row?.n);
}

/**
 * The sidecar's cursor has passed the workload's last event (once Ponder is ready): a cheap check
 * first, so the comparison with the ground truth does not load the machine while the sidecar works.
 */
async function cursorPastEvents(db: pg.Client, workload: Workload): Promise<boolean> {
  const { rows } = await db
    .query<{ past: boolean | null }>("SELECT max(block) >= $1 AS past FROM stakesync.cursor", [workload.head])
    .catch(() => ({ rows: [] }));
  return rows[0]?.past === true;
}

/** (b) Ponder and the sidecar together until developers equals the ground truth. */
async function fullPipeline(url: string, env: Record<string, string>, schema: string, workload: Workload) {
  const t0 = performance.now();
  const ponder = await startPonder({ ...env, DATABASE_URL: url }, schema);
  // As `npm start` does it.
  if (!(await ponderAnswering(ponder.url, ponder.process))) throw new Error("ponder exited before answering");
  const sidecar = await startSidecar({ ...env, DATABASE_URL: url, DATABASE_SCHEMA: schema }, `sidecar-${schema}`);
  let readyAt: number | undefined;
  let done = 0;
  // One connection for the whole wait: a new one per check would fork a backend every 50 ms.
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await waitFor(
      "developers to equal the ground truth",
      async () => {
        if (readyAt === undefined && (await ponderReady(ponder.url))) readyAt = performance.now();
        if (sidecar.process.exitCode !== null) throw new Error(`sidecar exited: ${sidecar.output().slice(-2000)}`);
        return readyAt !== undefined && (await cursorPastEvents(db, workload)) && (await mismatches(db)) === 0;
      },
      { timeoutMs: 3_600_000, intervalMs: 50 },
    );
    done = performance.now();
  } finally {
    await db.end();
  }
  const result = {
    seconds: seconds(done - t0),
    readyToSyncedSeconds: seconds(done - (readyAt ?? done)),
    ponderPeakMb: ponder.peakRssMb(),
    sidecarPeakMb: sidecar.peakRssMb(),
    eventsPerSecond: perSecond(workload.events, seconds(done - t0)),
  };
  await Promise.all([ponder.stop(), sidecar.stop()]);
  return result;
}

/** stakeOf() for every developer at the head, against the generator's bookkeeping. */
async function verifyTruth(anvil: Anvil, workload: Workload) {
  const clients = await connect(anvil.rpcUrl);
  let wrong = 0;
  for (let i = 0; i < workload.developers.length; i += 500) {
    const slice = workload.developers.slice(i, i + 500);
    const amounts = await Promise.all(
      slice.map((d) =>
        clients.publicClient.readContract({
          address: workload.deployment.stakeVault,
          abi: StakeVaultAbi,
          functionName: "stakeOf",
          args: [d],
        }),
      ),
    );
    slice.forEach((d, j) => {
      if ((amounts[j] ?? 0n).toString() !== (workload.truth[d.toLowerCase()] ?? "0")) wrong++;
    });
  }
  if (wrong > 0) throw new Error(`${wrong} developers' stakeOf() differ from the generated ground truth`);
}

/**
 * A 2-core machine shared with other work varies by a second from run to run: each backfill
 * runs REPEAT times; the figure is the run with the median time, its peak memory the highest
 * seen, and every run's time is kept.
 */
async function median<T extends Timed>(run: (i: number) => Promise<T>) {
  const runs: T[] = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await run(i));
  return medianOf(runs);
}

type Timed = { seconds: number; peakMb?: number; ponderPeakMb?: number; sidecarPeakMb?: number };

function medianOf<T extends Timed>(runs: T[]): T & { runsSeconds: number[] } {
  const peak = (key: "peakMb" | "ponderPeakMb" | "sidecarPeakMb") =>
    runs[0]?.[key] === undefined ? {} : { [key]: Math.max(...runs.map((r) => r[key] ?? 0)) };
  const middle = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)] as T;
  return {
    ...middle,
    ...peak("peakMb"),
    ...peak("ponderPeakMb"),
    ...peak("sidecarPeakMb"),
    runsSeconds: runs.map((r) => r.seconds),
  };
}

function percentile(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** (d) 1 s blocks, stakes spread over time; block seen on ws → developers row committed, CONFIRMATIONS=0. */
async function realtime(mode: "ws" | "polling", stakes: number) {
  const anvil = await startAnvil({ port: await freePort(), blockTime: 1 });
  anvils.add(anvil);
  const clients = await connect(anvil.rpcUrl);
  const deployment = await deploy(clients);
  const owner = vault(clients, deployment);
  await owner.fund(10n ** 15n);
  const url = await freshDatabase();
  const wallets = developerWallets(stakes, `realtime-${mode}`);
  await prepareApplication(url, { developers: wallets, truth: {} } as unknown as Workload);
  const env = chainEnv(
    anvil,
    { deployment },
    {
      DATABASE_URL: url,
      CONFIRMATIONS: "0",
      ...(mode === "ws" ? { WS_URL: anvil.wsUrl } : {}),
    },
  );
  const ponder = await startPonder(env, `rt_${mode}`);
  const sidecar = await startSidecar({ ...env, DATABASE_SCHEMA: `rt_${mode}` }, `sidecar-rt-${mode}`);
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
  while (committedAt.size < wallets.length) {
    const waiting = wallets.map((w) => w.toLowerCase()).filter((w) => !committedAt.has(w));
    // One statement, one snapshot: both sightings of a poll are at the same instant.
    const { rows } = await db.query<{ w: string; indexed: boolean; committed: boolean }>(
      `SELECT w, EXISTS (SELECT 1 FROM "rt_${mode}".stake_event e WHERE e.developer = w) AS indexed,
              EXISTS (SELECT 1 FROM developers d WHERE lower(d.wallet_address) = w AND d.stake_amount > 0) AS committed
         FROM unnest($1::text[]) AS w`,
      [waiting],
    );
    const now = performance.now();
    for (const { w, indexed, committed } of rows) {
      if (indexed && !indexedAt.has(w)) indexedAt.set(w, now);
      if (committed) committedAt.set(w, now);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
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
  const added = [...committedAt].map(([w, t]) => t - (indexedAt.get(w) ?? t)).sort((a, b) => a - b);
  const summary = (values: number[]) => ({
    p50: Math.round(percentile(values, 50)),
    p95: Math.round(percentile(values, 95)),
    p99: Math.round(percentile(values, 99)),
    max: Math.round(values.at(-1) ?? Number.NaN),
  });
  await Promise.all([ponder.stop(), sidecar.stop()]);
  await anvil.stop();
  anvils.delete(anvil);
  return {
    mode,
    samples: latencies.length,
    ...summary(latencies),
    /** Ponder alone: block seen → its stake_event row. */
    ponder: summary(ponderLatencies),
    /** What the sidecar adds: stake_event row → developers row, per stake. */
    sidecarAdds: summary(added),
  };
}

/** (b) cold and cached, with the private-node RPC settings, for one workload size. */
async function pipelineAt(events: number) {
  const { anvil, workload } = await workloadChain({ seed: args.seed, events, developers: D }, log);
  anvils.add(anvil);
  const env = chainEnv(anvil, workload, PRIVATE_NODE);
  const url = await freshDatabase();
  await prepareApplication(url, workload);
  log(`(b) full pipeline at ${workload.events} events, cold`);
  const cold = await fullPipeline(url, env, "scale_cold", workload);
  await resetSidecar(url);
  const cached = await fullPipeline(url, env, "scale_cached", workload);
  await anvil.stop();
  anvils.delete(anvil);
  return { events: workload.events, cold, cached };
}

// ---------------------------------------------------------------------------------------------

const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  versions: {
    ponder: JSON.parse(readFileSync(path.join(repoRoot, "node_modules", "ponder", "package.json"), "utf8")).version,
    postgres: (await query<{ v: string }>(postgres.url, "SHOW server_version"))[0]?.v,
  },
  parameters: {
    events: N,
    developers: D,
    seed: args.seed,
    realtimeStakes: Number(args["realtime-stakes"]),
    privateNode: PRIVATE_NODE,
  },
};

try {
  const { anvil, workload } = await workloadChain({ seed: args.seed, events: N, developers: D }, log);
  anvils.add(anvil);
  await verifyTruth(anvil, workload);
  results.workload = {
    events: workload.events,
    blocks: workload.head - workload.deployment.blockNumber,
    kinds: workload.kinds,
  };
  const base = chainEnv(anvil, workload);

  const privateNode = { ...base, ...PRIVATE_NODE };
  if (only.has("a")) {
    log("(a) bare Ponder, default RPC settings, cold");
    const cold = await barePonder({ ...base, DATABASE_URL: await freshDatabase() }, "a_cold");
    log(`(a) bare Ponder, private-node RPC settings, cold, ${REPEAT} runs`);
    const tunedCold = await median(async (i) =>
      barePonder({ ...privateNode, DATABASE_URL: await freshDatabase() }, `a_tuned_${i}`),
    );
    results.barePonder = {
      cold: { ...cold, eventsPerSecond: perSecond(workload.events, cold.seconds) },
      privateNodeCold: { ...tunedCold, eventsPerSecond: perSecond(workload.events, tunedCold.seconds) },
    };
  }

  // The database of the last cold (b) run keeps its RPC cache and developers for the cached runs.
  let url = "";
  if (only.has("b")) {
    log(`(b) full pipeline, cold, ${REPEAT} runs`);
    // Each run in a fresh database, so every cold run has an empty RPC cache.
    const cold = await median(async (i) => {
      url = await freshDatabase();
      await prepareApplication(url, workload);
      return fullPipeline(url, privateNode, `b_cold_${i}`, workload);
    });
    results.fullPipeline = { cold };
  }

  // Cached (a) and (b) take turns on one database and the same Ponder settings: the machine's
  // slower minutes weigh on both, and the ratio is what the sidecar adds to Ponder. Who goes
  // first alternates: each run leaves 100k fresh rows for autovacuum to analyze during the next.
  if (only.has("a") || only.has("b")) {
    if (!url) {
      url = await freshDatabase();
      log("filling the RPC cache");
      await barePonder({ ...privateNode, DATABASE_URL: url }, "cache_fill");
    }
    const bare: Awaited<ReturnType<typeof barePonder>>[] = [];
    const full: Awaited<ReturnType<typeof fullPipeline>>[] = [];
    log(`cached: (a) and (b) in turn, ${REPEAT} runs each`);
    for (let i = 0; i < REPEAT; i++) {
      const turns: (() => Promise<unknown>)[] = [];
      if (only.has("a"))
        turns.push(async () => bare.push(await barePonder({ ...privateNode, DATABASE_URL: url }, `a_cached_${i}`)));
      if (only.has("b")) {
        turns.push(async () => {
          await resetSidecar(url);
          full.push(await fullPipeline(url, privateNode, `b_cached_${i}`, workload));
        });
      }
      if (i % 2 === 1) turns.reverse();
      for (const turn of turns) await turn();
    }
    if (only.has("a")) {
      const cached = medianOf(bare);
      Object.assign(results.barePonder as object, {
        cached: { ...cached, eventsPerSecond: perSecond(workload.events, cached.seconds) },
      });
    }
    if (only.has("b")) {
      Object.assign(results.fullPipeline as object, { cached: medianOf(full) });
      log(`stakesync verify on ${D} developers`);
      const report = await verify(
        loadSidecarConfig({ ...privateNode, DATABASE_URL: url, DATABASE_SCHEMA: `b_cached_${REPEAT - 1}` }),
        () => {},
      );
      results.verify = { wallets: report.wallets, mismatches: report.mismatches.length, seconds: report.seconds };
    }
  }

  if (only.has("c")) {
    log("(c) the original design's listener");
    const url = await freshDatabase();
    const c = await runOriginalDesign({
      rpcUrl: anvil.rpcUrl,
      vault: workload.deployment.stakeVault,
      fromBlock: workload.deployment.blockNumber,
      toBlock: workload.head,
      databaseUrl: url,
      developers: workload.developers,
    });
    results.originalDesign = {
      ...c,
      seconds: seconds(c.seconds * 1000),
      eventsPerSecond: perSecond(c.events, c.seconds),
    };
  }
  await anvil.stop();
  anvils.delete(anvil);

  if (only.has("d")) {
    const stakes = Number(args["realtime-stakes"]);
    log(`(d) realtime over ws, ${stakes} stakes`);
    const ws = await realtime("ws", stakes);
    log(`(d) realtime over polling, ${stakes} stakes`);
    const polling = await realtime("polling", stakes);
    results.realtime = { ws, polling };
  }

  if (args.scale) {
    const sizes = [Math.round(N / 10), N, N * 10];
    const scale = [];
    for (const events of sizes) scale.push(await pipelineAt(events));
    results.scale = scale.map((s) => ({
      ...s,
      coldUsPerEvent: Math.round((s.cold.seconds * 1e6) / s.events),
      cachedUsPerEvent: Math.round((s.cached.seconds * 1e6) / s.events),
    }));
  }
} finally {
  await shutdown();
}

mkdirSync(path.dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${table(results)}\n`);

function table(r: Record<string, unknown>): string {
  const get = (p: string) =>
    p.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], r) ?? "—";
  const rows: [string, unknown][] = [
    ["events / developers / blocks", `${get("workload.events")} / ${D} / ${get("workload.blocks")}`],
    [
      "(a) bare Ponder, cold (default RPC)",
      `${get("barePonder.cold.seconds")} s · ${get("barePonder.cold.eventsPerSecond")} ev/s`,
    ],
    [
      "(a) bare Ponder, cold (private-node RPC)",
      `${get("barePonder.privateNodeCold.seconds")} s · ${get("barePonder.privateNodeCold.eventsPerSecond")} ev/s`,
    ],
    [
      "(a) bare Ponder, cached (private-node RPC)",
      `${get("barePonder.cached.seconds")} s · ${get("barePonder.cached.eventsPerSecond")} ev/s`,
    ],
    [
      "(b) full pipeline, cold",
      `${get("fullPipeline.cold.seconds")} s · ${get("fullPipeline.cold.eventsPerSecond")} ev/s`,
    ],
    [
      "(b) full pipeline, cached",
      `${get("fullPipeline.cached.seconds")} s · ${get("fullPipeline.cached.eventsPerSecond")} ev/s`,
    ],
    [
      "(b)/(a) cold (private-node RPC both)",
      ratio(get("barePonder.privateNodeCold.seconds"), get("fullPipeline.cold.seconds")),
    ],
    [
      "(b)/(a) cached (private-node RPC both, in turn)",
      ratio(get("barePonder.cached.seconds"), get("fullPipeline.cached.seconds")),
    ],
    [
      "Ponder /ready → developers synced (cold / cached)",
      `${get("fullPipeline.cold.readyToSyncedSeconds")} s / ${get("fullPipeline.cached.readyToSyncedSeconds")} s`,
    ],
    [
      "(c) original design",
      `${get("originalDesign.seconds")} s · ${get("originalDesign.eventsPerSecond")} ev/s (getLogs ${get("originalDesign.batchSize")} blocks)`,
    ],
    ["(d) realtime ws p50/p95/p99/max", latency(get("realtime.ws"))],
    ["(d) realtime polling p50/p95/p99/max", latency(get("realtime.polling"))],
    ["(d) ws: Ponder alone, block → stake_event row", latency(get("realtime.ws.ponder"))],
    ["(d) ws: what the sidecar adds, stake_event row → developers row", latency(get("realtime.ws.sidecarAdds"))],
    [
      "stakesync verify (wallets · mismatches · time)",
      `${get("verify.wallets")} · ${get("verify.mismatches")} · ${get("verify.seconds")} s`,
    ],
    [
      "(e) peak RSS Ponder / sidecar (cold)",
      `${mb(get("fullPipeline.cold.ponderPeakMb"))} / ${mb(get("fullPipeline.cold.sidecarPeakMb"))}`,
    ],
  ];
  for (const s of (r.scale as { events: number; coldUsPerEvent: number; cachedUsPerEvent: number }[] | undefined) ??
    []) {
    rows.push([`(f) ${s.events} events: µs/event cold / cached`, `${s.coldUsPerEvent} / ${s.cachedUsPerEvent}`]);
  }
  return ["| measure | result |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}

function ratio(bare: unknown, full: unknown) {
  return typeof bare === "number" && typeof full === "number" ? `${(bare / full).toFixed(2)}×` : "—";
}
function latency(x: unknown) {
  if (typeof x !== "object" || x === null) return "—";
  const l = x as { p50: number; p95: number; p99: number; max: number };
  return `${l.p50} / ${l.p95} / ${l.p99} / ${l.max} ms`;
}
function mb(x: unknown) {
  return typeof x === "number" ? `${Math.round(x)} MB` : "—";
}

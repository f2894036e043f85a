/**
 * `npm run bench`: backfill throughput, realtime latency and memory of the full pipeline,
 * bare Ponder and the original design, on one generated chain. Self-contained like the tests:
 * its own anvil and embedded PostgreSQL. Prints a markdown table; writes bench/results/latest.json.
 *
 *   --events N (100000)  --developers D (10000)  --seed S  --realtime-stakes K (300)
 *   --repeat R (5)       runs of each (a)/(b) backfill but the default-RPC one; the median is reported
 *   --cold-repeat C (R)  cold runs of each, when fewer are wanted than cached (a long cached
 *                        comparison: resolving 5 % cached takes 50–100 runs a side here)
 *   --scale              also run the full pipeline at N/10 and 10·N
 *   --only a,b,c,d       run only these scenarios; `floor` (not by default) runs the floor under (b)
 *                        beside them, in the same turns (bench/baselines/floor.mjs)
 *   --statements         record where PostgreSQL's time went in each backfill run (bench/statements.ts)
 *   --out FILE           where the JSON goes (default bench/results/latest.json)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { verify } from "../cli/verify";
import { loadSidecarConfig, repoRoot } from "../lib/config";
import { queryOnce as query } from "../lib/query-once";
import { prepareApplication, resetSidecar } from "./application";
import { runOriginalDesign } from "./baselines/original-design";
import { openLab, PRIVATE_NODE, workloadEnv } from "./lab";
import { table } from "./report";
import { barePonder } from "./scenarios/bare-ponder";
import { floor } from "./scenarios/floor";
import { fullPipeline, pipelineAt } from "./scenarios/full-pipeline";
import { realtime } from "./scenarios/realtime";
import { medianOf, perSecond, seconds } from "./stats";
import { verifyTruth, workloadChain } from "./workload";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "100000" },
    developers: { type: "string", default: "10000" },
    seed: { type: "string", default: "stakesync" },
    "realtime-stakes": { type: "string", default: "300" },
    repeat: { type: "string", default: "5" },
    "cold-repeat": { type: "string" },
    scale: { type: "boolean", default: false },
    only: { type: "string", default: "a,b,c,d" },
    statements: { type: "boolean", default: false },
    out: { type: "string", default: path.join(repoRoot, "bench", "results", "latest.json") },
  },
});
const N = Number(args.events);
const D = Number(args.developers);
const only = new Set(args.only.split(","));
const REPEAT = Number(args.repeat);
const COLD_REPEAT = Number(args["cold-repeat"] ?? args.repeat);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const lab = await openLab(log, { statements: args.statements });

/** The code measured: a result file names its commit, and whether files differed from it. */
function measuredCode() {
  const git = (...a: string[]) => {
    try {
      return execFileSync("git", a, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return undefined; // not a git checkout (an unpacked release): nothing to name
    }
  };
  const commit = git("rev-parse", "HEAD");
  return commit === undefined
    ? {}
    : { commit, uncommitted: (git("status", "--porcelain", "--untracked-files=no") ?? "") !== "" };
}

/**
 * (a), (b) and the floor REPEAT times each, taking turns, who goes first rotating: a slower minute
 * of the machine weighs on every side, and the ratio is what the sidecar adds to Ponder.
 */
type Side<T> = false | ((i: number) => Promise<T>);
async function inTurns<A, B, F>(repeat: number, a: Side<A>, b: Side<B>, f: Side<F> = false) {
  const bare: A[] = [];
  const full: B[] = [];
  const least: F[] = [];
  for (let i = 0; i < repeat; i++) {
    const turns = [
      ...(a ? [async () => bare.push(await a(i))] : []),
      ...(b ? [async () => full.push(await b(i))] : []),
      ...(f ? [async () => least.push(await f(i))] : []),
    ];
    const first = i % turns.length;
    for (const turn of [...turns.slice(first), ...turns.slice(0, first)]) await turn();
  }
  return { bare, full, least };
}

const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  ...measuredCode(),
  machine: {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  versions: {
    ponder: JSON.parse(readFileSync(path.join(repoRoot, "node_modules", "ponder", "package.json"), "utf8")).version,
    postgres: (await query<{ v: string }>(lab.postgres.url, "SHOW server_version"))[0]?.v,
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
  lab.keepAnvil(anvil);
  await verifyTruth(anvil, workload);
  results.workload = {
    events: workload.events,
    blocks: workload.head - workload.deployment.blockNumber,
    kinds: workload.kinds,
  };
  const base = workloadEnv(anvil, workload);

  const privateNode = { ...base, ...PRIVATE_NODE };
  if (only.has("a")) {
    log("(a) bare Ponder, default RPC settings, cold");
    const cold = await barePonder(lab, { ...base, DATABASE_URL: await lab.freshDatabase() }, "a_cold");
    results.barePonder = { cold: { ...cold, eventsPerSecond: perSecond(workload.events, cold.seconds) } };
  }

  // Cold (a) with the private-node settings and cold (b) take turns, who goes first alternating,
  // as the cached runs below do: run one after the other (all of (a), then all of (b)), a busier
  // minute of the machine fell on one side only, and moved the cold ratio by a fifth. Each run in
  // a fresh database, so every cold run has an empty RPC cache. The database of the last (b) run
  // keeps its RPC cache and developers for the cached runs.
  let url = "";
  const backfills = only.has("a") || only.has("b") || only.has("floor");
  const sides = [
    only.has("a") && "(a) with private-node RPC settings",
    only.has("b") && "(b)",
    only.has("floor") && "the floor",
  ].filter(Boolean);
  if (backfills) {
    log(`cold: ${sides.join(" and ")}${sides.length > 1 ? " in turn" : ""}, ${COLD_REPEAT} runs each`);
    const { bare, full, least } = await inTurns(
      COLD_REPEAT,
      only.has("a") &&
        (async (i) => barePonder(lab, { ...privateNode, DATABASE_URL: await lab.freshDatabase() }, `a_tuned_${i}`)),
      only.has("b") &&
        (async (i) => {
          const fresh = await lab.freshDatabase();
          await prepareApplication(fresh, workload);
          const run = await fullPipeline(lab, fresh, privateNode, `b_cold_${i}`, workload);
          url = fresh;
          return run;
        }),
      only.has("floor") &&
        (async (i) => {
          const fresh = await lab.freshDatabase();
          await prepareApplication(fresh, workload);
          const run = await floor(lab, fresh, privateNode, `f_cold_${i}`, workload);
          url = fresh;
          return run;
        }),
    );
    if (only.has("a")) {
      const tunedCold = medianOf(bare);
      Object.assign(results.barePonder as object, {
        privateNodeCold: { ...tunedCold, eventsPerSecond: perSecond(workload.events, tunedCold.seconds) },
      });
    }
    if (only.has("b")) results.fullPipeline = { cold: medianOf(full) };
    if (only.has("floor")) results.floor = { cold: medianOf(least) };
  }

  // Cached (a), (b) and the floor take turns on one database and the same Ponder settings: the machine's
  // slower minutes weigh on both, and the ratio is what the sidecar adds to Ponder. Who goes
  // first alternates: each run leaves 100k fresh rows for autovacuum to analyze during the next.
  if (backfills) {
    if (!url) {
      url = await lab.freshDatabase();
      await prepareApplication(url, workload);
      log("filling the RPC cache");
      await barePonder(lab, { ...privateNode, DATABASE_URL: url }, "cache_fill");
    }
    log(`cached: ${sides.join(" and ")}${sides.length > 1 ? " in turn" : ""}, ${REPEAT} runs each`);
    const { bare, full, least } = await inTurns(
      REPEAT,
      only.has("a") && ((i) => barePonder(lab, { ...privateNode, DATABASE_URL: url }, `a_cached_${i}`)),
      only.has("b") &&
        (async (i) => {
          await resetSidecar(url);
          return fullPipeline(lab, url, privateNode, `b_cached_${i}`, workload);
        }),
      only.has("floor") && ((i) => floor(lab, url, privateNode, `f_cached_${i}`, workload)),
    );
    if (only.has("floor")) results.floor = { ...(results.floor as object), cached: medianOf(least) };
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
    const url = await lab.freshDatabase();
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
  await lab.stopAnvil(anvil);

  if (only.has("d")) {
    const stakes = Number(args["realtime-stakes"]);
    log(`(d) realtime over ws, ${stakes} stakes`);
    const ws = await realtime(lab, "ws", stakes);
    log(`(d) realtime over polling, ${stakes} stakes`);
    const polling = await realtime(lab, "polling", stakes);
    results.realtime = { ws, polling };
  }

  if (args.scale) {
    const sizes = [Math.round(N / 10), N, N * 10];
    const scale = [];
    for (const events of sizes) scale.push(await pipelineAt(lab, { seed: args.seed, events, developers: D }));
    results.scale = scale.map((s) => ({
      ...s,
      coldUsPerEvent: Math.round((s.cold.seconds * 1e6) / s.events),
      cachedUsPerEvent: Math.round((s.cached.seconds * 1e6) / s.events),
    }));
  }
} finally {
  await lab.shutdown();
}

mkdirSync(path.dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${table(results)}\n`);

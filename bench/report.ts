import { noiseRatios, pairRatios } from "./stats";

/** The bench's markdown table, from its results (bench/results/latest.json). */
export function table(r: Record<string, unknown>): string {
  const get = (p: string) =>
    p.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], r) ?? "—";
  const rows: [string, unknown][] = [
    [
      "events / developers / blocks",
      `${get("workload.events")} / ${get("parameters.developers")} / ${get("workload.blocks")}`,
    ],
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
      "(b)/(a) cold · cached, pair by pair",
      `${pairs(get("barePonder.privateNodeCold.runsSeconds"), get("fullPipeline.cold.runsSeconds"))} · ${pairs(get("barePonder.cached.runsSeconds"), get("fullPipeline.cached.runsSeconds"))}`,
    ],
    [
      "(a)/(a) cold · cached, each bare run against the next: the machine's own spread",
      `${noise(get("barePonder.privateNodeCold.runsSeconds"))} · ${noise(get("barePonder.cached.runsSeconds"))}`,
    ],
    [
      "floor/(a) cold · cached: Ponder and the least write any sidecar makes (--only a,floor)",
      `${ratio(get("barePonder.privateNodeCold.seconds"), get("floor.cold.seconds"))} · ${ratio(get("barePonder.cached.seconds"), get("floor.cached.seconds"))}`,
    ],
    [
      "floor/(a) cold · cached, pair by pair",
      `${pairs(get("barePonder.privateNodeCold.runsSeconds"), get("floor.cold.runsSeconds"))} · ${pairs(get("barePonder.cached.runsSeconds"), get("floor.cached.runsSeconds"))}`,
    ],
    ["(a) bare Ponder, cached: CPU seconds", cpu(get("barePonder.cached.cpuSeconds"))],
    ["(b) full pipeline, cached: CPU seconds", cpu(get("fullPipeline.cached.cpuSeconds"))],
    ["floor, cached: CPU seconds", cpu(get("floor.cached.cpuSeconds"))],
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
  // Only in a run with --statements (bench/statements.ts): the median runs' statement time.
  if (get("fullPipeline.cached.statements") !== "—" || get("barePonder.cached.statements") !== "—")
    rows.push([
      "PostgreSQL statement time, cached (a) / (b)",
      `${get("barePonder.cached.statements.seconds")} s / ${get("fullPipeline.cached.statements.seconds")} s`,
    ]);
  for (const s of (r.scale as { events: number; coldUsPerEvent: number; cachedUsPerEvent: number }[] | undefined) ??
    []) {
    rows.push([`(f) ${s.events} events: µs/event cold / cached`, `${s.coldUsPerEvent} / ${s.cachedUsPerEvent}`]);
  }
  return ["| measure | result |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}

function ratio(bare: unknown, full: unknown) {
  return typeof bare === "number" && typeof full === "number" ? `${(bare / full).toFixed(2)}×` : "—";
}
const isRuns = (x: unknown): x is number[] => Array.isArray(x) && x.length > 1;
/** Ratios in order and the lowest, as the goal reads them (stats.ts). */
const withLowest = (r: number[]) => `${r.map((x) => x.toFixed(2)).join(" ")} (lowest ${Math.min(...r).toFixed(2)})`;
const pairs = (a: unknown, b: unknown) => (isRuns(a) && isRuns(b) ? withLowest(pairRatios(a, b)) : "—");
const noise = (a: unknown) => (isRuns(a) ? withLowest(noiseRatios(a)) : "—");
function latency(x: unknown) {
  if (typeof x !== "object" || x === null) return "—";
  const l = x as { p50: number; p95: number; p99: number; max: number };
  return `${l.p50} / ${l.p95} / ${l.p99} / ${l.max} ms`;
}
/** The median run's CPU seconds by part (see cpuSplit). */
function cpu(x: unknown) {
  if (typeof x !== "object" || x === null) return "—";
  const names: Record<string, string> = { ponder: "Ponder", sidecar: "sidecar", postgres: "PostgreSQL" };
  return Object.entries(x as Record<string, number>)
    .map(([k, v]) => `${names[k] ?? k} ${v.toFixed(1)}`)
    .join(" · ");
}
function mb(x: unknown) {
  return typeof x === "number" ? `${Math.round(x)} MB` : "—";
}

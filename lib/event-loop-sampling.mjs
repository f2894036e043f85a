/**
 * Loaded into Ponder's process with `--import` (lib/local/process.ts, ponderCommand): Ponder's
 * event-loop delay metrics sample the loop every 10 ms instead of every millisecond.
 *
 * Why: Ponder registers prom-client's default metrics with `eventLoopMonitoringPrecision: 1`
 * (ponder/dist/esm/internal/metrics.js), which prom-client hands to Node's
 * `perf_hooks.monitorEventLoopDelay` as its resolution: a timer that wakes Ponder's main thread
 * a thousand times a second for as long as Ponder runs, busy or idle. An idle `ponder start`
 * (indexed to the head, two runs each, 2026-12-05) used 5.1–6.0 % of a core without this hook and
 * 3.7–4.4 % with it when polling every 100 ms (as the tests do), 3.3–3.9 % and 2.1–2.7 % at the
 * default 1 s. The tests start about forty Ponders a run; production keeps one up all day.
 *
 * 10 ms is prom-client's own default and what the sidecar samples at. Only Ponder's
 * `nodejs_eventloop_lag_*` figures change: they measure the time between two samples, so an idle
 * loop now reads about 10 ms instead of about 1 ms (as the sidecar's always have), and a stall
 * shorter than 10 ms may be missed (a stall that matters lasts longer). A caller asking for 10 ms
 * or more, or passing something other than a number (Node's own error then), gets what it asked
 * for. If a Ponder upgrade stops asking for 1 ms, this does nothing.
 */
import * as nodeModule from "node:module";

const MIN_RESOLUTION_MS = 10;

const require = nodeModule.createRequire(import.meta.url);
const perfHooks = require("node:perf_hooks");
const monitorEventLoopDelay = perfHooks.monitorEventLoopDelay;

perfHooks.monitorEventLoopDelay = function monitorEventLoopDelayAtLeast10ms(options) {
  const resolution = options?.resolution;
  if (typeof resolution !== "number" || resolution >= MIN_RESOLUTION_MS)
    return monitorEventLoopDelay.call(this, options);
  return monitorEventLoopDelay.call(this, { ...options, resolution: MIN_RESOLUTION_MS });
};
// An ES module that imported { monitorEventLoopDelay } from "node:perf_hooks" before this file
// ran holds the original; this updates its binding (modules importing it later see the new one).
nodeModule.syncBuiltinESMExports();

/**
 * The hook Ponder's process loads (lib/event-loop-sampling.mjs) raises a 1 ms event-loop delay
 * resolution to 10 ms, as Ponder's prom-client asks it, through require and import alike, and
 * leaves a coarser one as asked.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { expect, it } from "vitest";
import { repoRoot } from "../../lib/config";

const hook = pathToFileURL(path.join(repoRoot, "lib", "event-loop-sampling.mjs")).href;

/**
 * How a module gets monitorEventLoopDelay: as prom-client does (CommonJS `require`, the same
 * object as process.getBuiltinModule), by an ES import after the hook, or by an ES import that
 * ran before it (its binding updated by the hook's syncBuiltinESMExports).
 */
type Via = "require" | "import" | "import before the hook";

/**
 * Samples taken in 300 ms by monitorEventLoopDelay at `resolution`, and the median gap between
 * two, in ms (a single gap can be shorter when the loop was busy: a late sample is followed by an
 * early one).
 */
function sample(resolution: unknown, { withHook, via }: { withHook: boolean; via: Via }) {
  const get = {
    require: 'process.getBuiltinModule("node:perf_hooks").monitorEventLoopDelay',
    import: '(await import("node:perf_hooks")).monitorEventLoopDelay',
    "import before the hook": "globalThis.importedEarly()",
  }[via];
  const early = `data:text/javascript,${encodeURIComponent('import { monitorEventLoopDelay } from "node:perf_hooks"; globalThis.importedEarly = () => monitorEventLoopDelay;')}`;
  const program = `
    const monitorEventLoopDelay = ${get};
    let h;
    try { h = monitorEventLoopDelay({ resolution: ${JSON.stringify(resolution)} }); }
    catch (error) { console.log(JSON.stringify({ error: error.code })); process.exit(0); }
    h.enable();
    setTimeout(() => { h.disable(); console.log(JSON.stringify({ count: h.count, medianMs: h.percentile(50) / 1e6 })); }, 300);`;
  const args = [
    ...(via === "import before the hook" ? ["--import", early] : []),
    ...(withHook ? ["--import", hook] : []),
    "--input-type=module",
    "-e",
    program,
  ];
  return JSON.parse(execFileSync(process.execPath, args, { encoding: "utf8" })) as {
    count: number;
    medianMs: number;
    error?: string;
  };
}

it("samples every 10 ms where 1 ms was asked, through require and import, before the hook or after", () => {
  // About 1.1 ms without the hook; well under 8 even when the machine is busy.
  expect(sample(1, { withHook: false, via: "require" }).medianMs).toBeLessThan(8);
  for (const via of ["require", "import", "import before the hook"] as const) {
    const hooked = sample(1, { withHook: true, via });
    expect(hooked.medianMs, via).toBeGreaterThanOrEqual(5);
    expect(hooked.count, via).toBeLessThanOrEqual(31);
  }
});

it("leaves a resolution of 10 ms or more as asked, and a value that is not a number to Node's own error", () => {
  expect(sample(50, { withHook: true, via: "require" }).medianMs).toBeGreaterThanOrEqual(25);
  expect(sample("1", { withHook: false, via: "require" })).toEqual({ error: "ERR_INVALID_ARG_TYPE" });
  expect(sample("1", { withHook: true, via: "require" })).toEqual({ error: "ERR_INVALID_ARG_TYPE" });
});

it("keeps Ponder's own request: prom-client's default metrics at 1 ms precision (ponder/dist/esm/internal/metrics.js)", () => {
  // If a Ponder upgrade stops asking for 1 ms, the hook does nothing and can go.
  const source = readFileSync(
    path.join(repoRoot, "node_modules", "ponder", "dist", "esm", "internal", "metrics.js"),
    "utf8",
  );
  expect(source).toMatch(/eventLoopMonitoringPrecision: 1\b/);
});

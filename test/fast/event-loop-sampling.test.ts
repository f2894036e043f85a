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

/** Samples taken in 300 ms by monitorEventLoopDelay at `resolution`, and the median gap between two, in ms (a single gap
 * can be shorter when the loop was busy: a late sample is followed by an early one). */
function sample(resolution: number, { withHook, via }: { withHook: boolean; via: "require" | "import" }) {
  const program = `
    const { monitorEventLoopDelay } = ${via === "require" ? 'require("node:perf_hooks")' : 'await import("node:perf_hooks")'};
    const h = monitorEventLoopDelay({ resolution: ${resolution} });
    h.enable();
    setTimeout(() => { h.disable(); console.log(JSON.stringify({ count: h.count, medianMs: h.percentile(50) / 1e6 })); }, 300);`;
  const args = [
    ...(withHook ? ["--import", hook] : []),
    "--input-type=module",
    "-e",
    program.replace("require(", "process.getBuiltinModule("),
  ];
  return JSON.parse(execFileSync(process.execPath, args, { encoding: "utf8" })) as { count: number; medianMs: number };
}

it("samples every 10 ms where 1 ms was asked, through require and import", () => {
  expect(sample(1, { withHook: false, via: "require" }).medianMs).toBeLessThan(5);
  for (const via of ["require", "import"] as const) {
    const hooked = sample(1, { withHook: true, via });
    expect(hooked.medianMs, via).toBeGreaterThanOrEqual(5);
    expect(hooked.count, via).toBeLessThanOrEqual(31);
  }
});

it("leaves a resolution of 10 ms or more as asked", () => {
  expect(sample(50, { withHook: true, via: "require" }).medianMs).toBeGreaterThanOrEqual(25);
});

it("keeps Ponder's own request: prom-client's default metrics at 1 ms precision (ponder/dist/esm/internal/metrics.js)", () => {
  // If a Ponder upgrade stops asking for 1 ms, the hook does nothing and can go.
  const source = readFileSync(
    path.join(repoRoot, "node_modules", "ponder", "dist", "esm", "internal", "metrics.js"),
    "utf8",
  );
  expect(source).toMatch(/eventLoopMonitoringPrecision: 1\b/);
});

/** A tiny benchmark run: it completes and writes well-formed results (timings are not judged). */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { cleanup, run } from "./helpers/stack";

const dir = mkdtempSync(path.join(tmpdir(), "stakesync-bench-test-"));
afterAll(async () => {
  await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

it("runs every scenario on 2,000 events and writes the results", async () => {
  const out = path.join(dir, "results.json");
  const bench = run(
    process.execPath,
    [
      "--import",
      "tsx",
      "bench/run.ts",
      "--events",
      "2000",
      "--developers",
      "200",
      "--realtime-stakes",
      "6",
      "--repeat",
      "1",
      "--out",
      out,
    ],
    {},
  );
  expect(await bench.exited, bench.output().slice(-3000)).toBe(0);
  const results = JSON.parse(readFileSync(out, "utf8"));
  expect(results.workload.events).toBe(2000);
  for (const figure of [
    results.barePonder.cold.eventsPerSecond,
    results.barePonder.cached.eventsPerSecond,
    results.barePonder.privateNodeCold.eventsPerSecond,
    results.fullPipeline.cold.eventsPerSecond,
    results.fullPipeline.cached.eventsPerSecond,
    results.originalDesign.eventsPerSecond,
    results.fullPipeline.cold.ponderPeakMb,
    results.fullPipeline.cold.sidecarPeakMb,
  ]) {
    expect(figure).toBeGreaterThan(0);
  }
  // Where the cached runs' CPU went, read from /proc: each part did some work.
  expect(Object.keys(results.barePonder.cached.cpuSeconds)).toEqual(["ponder", "postgres"]);
  for (const part of ["ponder", "postgres"])
    expect(results.barePonder.cached.cpuSeconds[part], part).toBeGreaterThan(0);
  for (const part of ["ponder", "sidecar", "postgres"]) {
    expect(results.fullPipeline.cached.cpuSeconds[part], part).toBeGreaterThan(0);
  }
  expect(results.fullPipeline.cached.runsSeconds).toHaveLength(1);
  expect(results.fullPipeline.cached.seconds).toBe(Math.max(...results.fullPipeline.cached.runsSeconds));
  expect(results.verify).toMatchObject({ wallets: 200, mismatches: 0 });
  // Each sidecar watches its own Ponder: pointed at the default port, it alerted "indexer down".
  expect([results.fullPipeline.cold.sidecarAlerts, results.fullPipeline.cached.sidecarAlerts]).toEqual([0, 0]);
  for (const mode of ["ws", "polling"]) {
    expect(results.realtime[mode]).toMatchObject({ samples: 6, sidecarAlerts: 0 });
    // Ponder alone and what the sidecar adds, measured in the same run.
    expect(results.realtime[mode].ponder.p99).toBeGreaterThan(0);
    expect(results.realtime[mode].sidecarAdds.p99).toBeGreaterThanOrEqual(0);
  }
  expect(bench.output()).toContain("| (b) full pipeline, cached |");
  expect(bench.output()).toMatch(
    /\| \(b\) full pipeline, cached: CPU seconds \| Ponder [\d.]+ · sidecar [\d.]+ · PostgreSQL [\d.]+ \|/,
  );
  // Every scenario starts Ponder several times: minutes on a busy 2-core machine.
}, 600_000);

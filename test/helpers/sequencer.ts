/**
 * The order of test files: longest first, so that the last file to finish is a short one and no
 * worker idles while another runs the soak; the same order on every run and machine. Vitest's
 * own order comes from its cache of the last run's durations (a clean clone has none and falls
 * back to file size, which put the one-minute soak, the smallest file, last), and so changes with
 * the last run's noise: files that start together compete for 2 cores, and Ponder, anvil and
 * the sidecar poll while they wait, so a file slowed by its neighbours also costs more CPU
 * (two orders took 246 s and 369 s, on a machine whose speed also varied). The seconds below come from the faster run (3 workers,
 * 2 cores, 2026-12); a file missing here runs after those listed, the fast tier last.
 */
import path from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const MEASURED_SECONDS: Record<string, number> = {
  "test/soak.test.ts": 90,
  "test/effects.test.ts": 81,
  "test/operator.test.ts": 68,
  "test/bench.test.ts": 56,
  "test/sidecar-resilience.test.ts": 49,
  "test/dev.test.ts": 36,
  "test/ponder-restart.test.ts": 36,
  "test/leader-and-outbox.test.ts": 32,
  "test/crash.test.ts": 28,
  "test/monitoring.test.ts": 28,
  "test/reorg-while-stopped.test.ts": 27,
  "test/ponder-internals/crash-recovery.test.ts": 20,
  "test/adoption.test.ts": 16,
  "test/sidecar.test.ts": 16,
  "test/indexer.test.ts": 15,
  "test/postgres-restart.test.ts": 12,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = (spec: TestSpecification) =>
      MEASURED_SECONDS[path.relative(this.ctx.config.root, spec.moduleId).split(path.sep).join("/")] ?? 0;
    return [...files].sort((a, b) => seconds(b) - seconds(a));
  }
}

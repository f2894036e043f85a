/**
 * The order of test files: longest first, so that the last file to finish is a short one and no
 * worker idles while another runs the soak; the same order on every run and machine. Vitest's
 * own order comes from its cache of the last run's durations (a clean clone has none and falls
 * back to file size, which put the one-minute soak, the smallest file, last), and so changes with
 * the last run's noise: files that start together compete for 2 cores, and Ponder, anvil and
 * the sidecar poll while they wait, so a file slowed by its neighbours also costs more CPU
 * (vitest's cached order took 246 s in one run and 369 s in the next, on a machine whose speed
 * also varied). The seconds below come from the 246 s run (3 workers, 2 cores, 2026-12), but
 * the fast tier's (see there); files not listed (milliseconds each) run last; ties go by name.
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
  "test/ponder-internals/views-schema.test.ts": 11,
  "test/ponder-internals/event-id-order.test.ts": 11,
  "test/ponder-internals/reorg-order.test.ts": 10,
  "test/ponder-internals/meta-app.test.ts": 10,
  "test/application-writes.test.ts": 10,
  "test/ponder-internals/live-query-notify.test.ts": 9,
  "test/ponder-internals/checkpoint-layout.test.ts": 9,
  "test/ponder-internals/vite-config.test.ts": 9,
  "test/ponder-internals/sigterm-unlock.test.ts": 9,
  "test/multichain.test.ts": 9,
  "test/start.test.ts": 8,
  "test/config.test.ts": 5,
  "test/contracts.test.ts": 1,
  // The fast tier: a tenth of its files' seconds (2026-12-04, run alone; ponder-locked and
  // sync-application 2026-12-05), so that it runs after
  // every real-process file, its own longest first (a worker runs several of them in turn).
  "test/fast/sync-cost.test.ts": 0.72,
  "test/fast/loop.test.ts": 0.63,
  "test/fast/sync-reorgs.test.ts": 0.62,
  "test/fast/sync-queries.test.ts": 0.6,
  "test/fast/sync-replicas.test.ts": 0.4,
  "test/fast/sync.test.ts": 0.35,
  "test/fast/ponder-locked.test.ts": 0.54,
  "test/fast/alerts.test.ts": 0.32,
  "test/fast/sync-application.test.ts": 0.5,
  "test/fast/esm-scope-cache.test.ts": 0.14,
  "test/fast/outbox.test.ts": 0.13,
  "test/fast/cpu.test.ts": 0.11,
  "test/fast/inline.test.ts": 0.08,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const name = (spec: TestSpecification) =>
      path.relative(this.ctx.config.root, spec.moduleId).split(path.sep).join("/");
    const seconds = (spec: TestSpecification) => MEASURED_SECONDS[name(spec)] ?? 0;
    return [...files].sort((a, b) => seconds(b) - seconds(a) || name(a).localeCompare(name(b)));
  }
}

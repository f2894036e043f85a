/**
 * The order of test files: longest first, so that the last file to finish is a short one and no
 * worker idles while another runs the soak; the same order on every run and machine. Vitest's
 * own order comes from its cache of the last run's durations (a clean clone has none and falls
 * back to file size, which put the one-minute soak, the smallest file, last), and so changes with
 * the last run's noise: files that start together compete for 2 cores, and Ponder, anvil and
 * the sidecar poll while they wait, so a file slowed by its neighbours also costs more CPU
 * (vitest's cached order took 246 s in one run and 369 s in the next, on a machine whose speed
 * also varied). The seconds below come from a 184 s run (3 workers, 2 cores, 2026-12-05), each
 * from a file's first hook to its last (vitest's report leaves beforeAll out), but the fast
 * tier's (see there), and two later files' (estimated from their own runs); files not listed
 * (milliseconds each) run last; ties go by name.
 */
import path from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const MEASURED_SECONDS: Record<string, number> = {
  "test/soak.test.ts": 95,
  "test/effects.test.ts": 64,
  "test/operator.test.ts": 43,
  "test/bench.test.ts": 40,
  "test/sidecar-resilience.test.ts": 30,
  "test/ponder-restart.test.ts": 29,
  "test/leader-and-outbox.test.ts": 28,
  "test/dev.test.ts": 27,
  "test/monitoring.test.ts": 25,
  "test/crash.test.ts": 13,
  "test/adoption.test.ts": 12,
  "test/application-writes.test.ts": 10,
  "test/sidecar.test.ts": 10,
  "test/ponder-internals/commit-with-checkpoint.test.ts": 12,
  "test/ponder-internals/crash-recovery.test.ts": 9,
  "test/ponder-internals/crash-recovery-lock-order.test.ts": 8,
  "test/postgres-restart.test.ts": 8,
  "test/reorg-while-stopped.test.ts": 7,
  "test/start.test.ts": 7,
  "test/leader-network.test.ts": 5,
  "test/ponder-internals/reorg-order.test.ts": 5,
  "test/ponder-internals/vite-config.test.ts": 5,
  "test/ponder-internals/event-id-order.test.ts": 5,
  "test/ponder-internals/meta-app.test.ts": 5,
  "test/ponder-internals/views-schema.test.ts": 5,
  "test/indexer.test.ts": 5,
  "test/multichain.test.ts": 5,
  "test/ponder-internals/sigterm-unlock.test.ts": 4,
  "test/ponder-internals/checkpoint-layout.test.ts": 4,
  "test/config.test.ts": 4,
  "test/ponder-internals/live-query-notify.test.ts": 4,
  "test/contracts.test.ts": 1,
  // The fast tier: a tenth of its files' seconds in the same run, so that it runs after every
  // real-process file, its own longest first (a worker runs several of them in turn).
  "test/fast/ponder-locked.test.ts": 0.57,
  "test/fast/sync-application.test.ts": 0.39,
  "test/fast/loop.test.ts": 0.36,
  "test/fast/outbox-worker.test.ts": 0.35,
  "test/fast/alerts.test.ts": 0.29,
  "test/fast/cpu.test.ts": 0.21,
  "test/fast/sync.test.ts": 0.17,
  "test/fast/sync-cost.test.ts": 0.17,
  "test/fast/sync-reorgs.test.ts": 0.13,
  "test/fast/http.test.ts": 0.13,
  "test/fast/sync-replicas.test.ts": 0.11,
  "test/fast/sync-queries.test.ts": 0.11,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const name = (spec: TestSpecification) =>
      path.relative(this.ctx.config.root, spec.moduleId).split(path.sep).join("/");
    const seconds = (spec: TestSpecification) => MEASURED_SECONDS[name(spec)] ?? 0;
    return [...files].sort((a, b) => seconds(b) - seconds(a) || name(a).localeCompare(name(b)));
  }
}

import { configDefaults, defineConfig } from "vitest/config";
import { LongestFirst } from "./test/helpers/sequencer";

export default defineConfig({
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    pool: "forks",
    // Each file runs its own anvil and Ponder processes, and spends much of its time waiting on
    // them (blocks, restarts, alert thresholds). On 2 cores, three at a time took 246 s where two
    // took 332 s, and on the same machine an hour later, busier, 346 s where two took 430 s;
    // four, 235 s with every file slower.
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        // The fast tier's files share their workers' module graphs (isolate: false): each file
        // importing pg, the sidecar and vitest again took a third of its CPU. They hold no state
        // between files but the fake databases a worker may reuse (ponder-fake.ts); a file that
        // fakes timers or spies puts them back itself.
        test: { name: "fast", include: ["test/fast/**/*.test.ts"], isolate: false },
      },
      {
        extends: true,
        test: { name: "real", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, "test/fast/**"] },
      },
    ],
  },
});

import { defineConfig } from "vitest/config";
import { LongestFirst } from "./test/helpers/sequencer";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
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
  },
});

import { configDefaults, defineConfig } from "vitest/config";
import { LongestFirst } from "./test/helpers/sequencer";

export default defineConfig({
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    pool: "forks",
    // Each file runs its own anvil and Ponder processes, and spends much of its time waiting on
    // them (blocks, restarts, alert thresholds). On 2 cores, three at a time took 246 s where two
    // took 332 s, and on the same machine an hour later, busier, 346 s where two took 430 s;
    // four, 235 s with every file slower. Once Ponder's starts and the bulk stakes cost less
    // (2026-12-05), four took 170 s where three took 184 s on the same code, the machine otherwise
    // idle: 168 % of the 2 cores busy against 142 %.
    maxWorkers: 4,
    // A worker runs its files one after another in one module graph, instead of importing pg,
    // viem, the sidecar and vitest again for each: 0.9 CPU-seconds a file. What a file starts,
    // its afterAll stops (test/helpers/stack.ts's cleanup); a file that fakes timers or spies puts
    // them back itself; no test mocks a module or sets process.env.
    isolate: false,
    sequence: { sequencer: LongestFirst },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // `npm run test:fast` runs the project `fast` alone.
    projects: [
      { extends: true, test: { name: "fast", include: ["test/fast/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "real", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, "test/fast/**"] },
      },
    ],
  },
});

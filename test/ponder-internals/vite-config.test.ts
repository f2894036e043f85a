/**
 * Assumption: `ponder start` builds the app with a Vite server that loads the repository's
 * vite.config.ts, so the `server.watch: null` there leaves Ponder without a file watcher. Were the
 * file ignored (Ponder passing `configFile: false`, say), Vite's watcher would crawl the
 * repository at every start and wake on every file written under it: CPU for nothing, as long as
 * Ponder runs. A watcher shows as inotify watches held by the process.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { cleanup, startStack } from "./harness";

afterAll(cleanup);

/** How many inotify watches the process holds (each watch is an `inotify wd:` line in its fdinfo). */
function inotifyWatches(pid: number): number {
  let watches = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target !== "anon_inode:inotify") continue;
    watches += readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("inotify wd:")).length;
  }
  return watches;
}

describe("vite-config", () => {
  it("ponder start loads the repository's vite.config.ts: no file watcher", async () => {
    const { ponder } = await startStack();
    const pid = ponder.process.pid as number;
    expect(
      inotifyWatches(pid),
      "assumption vite-config: `ponder start` loads vite.config.ts into its Vite server (server.watch: null, no inotify watches)",
    ).toBe(0);
  });
});

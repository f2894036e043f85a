/**
 * SIDECAR_NICE: the launchers start the sidecar below Ponder's CPU priority, every thread of it.
 * (That `npm start` does, for the sidecar and not for Ponder: test/start.test.ts.)
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadSidecarNice } from "../../lib/config";
import { lowerPriority, type RunningProcess, spawnProcess } from "../../lib/local/process";
import { waitFor } from "../../lib/wait";

/** Each thread's nice value (field 19 of its stat; the fields after the command's closing parenthesis). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((thread) => {
    const stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

const started: RunningProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.kill()));
});

function node(program: string): RunningProcess {
  const proc = spawnProcess(process.execPath, ["-e", program], { PATH: process.env.PATH ?? "" });
  started.push(proc);
  return proc;
}

describe("SIDECAR_NICE", () => {
  it("defaults to 10 and takes 0 to 19, naming itself otherwise", () => {
    expect(loadSidecarNice({})).toBe(10);
    expect(loadSidecarNice({ SIDECAR_NICE: "0" })).toBe(0);
    expect(loadSidecarNice({ SIDECAR_NICE: " 19 " })).toBe(19);
    for (const bad of ["20", "-1", "5.5", "low"]) {
      expect(() => loadSidecarNice({ SIDECAR_NICE: bad }), bad).toThrow(ConfigError);
      try {
        loadSidecarNice({ SIDECAR_NICE: bad });
      } catch (error) {
        expect((error as ConfigError).variable).toBe("SIDECAR_NICE");
      }
    }
  });
});

describe("lowerPriority", () => {
  it("lowers every thread of a started Node process, and a thread it starts afterwards inherits it", async () => {
    // Running the program, Node has started its V8 and libuv threads; the worker comes on SIGUSR2.
    const proc = node(
      `process.on("SIGUSR2", () => new (require("node:worker_threads").Worker)("setInterval(() => {}, 1000)", { eval: true }));
       setInterval(() => {}, 1000);
       console.log("up");`,
    );
    const pid = proc.process.pid as number;
    await waitFor("the program to run", async () => proc.output().includes("up"));
    expect(lowerPriority(proc.process, 10)).toBeUndefined();
    const before = threadNices(pid);
    expect(before.length).toBeGreaterThan(1);
    expect(before).toEqual(before.map(() => 10));
    proc.process.kill("SIGUSR2");
    await waitFor("the worker's threads", async () => threadNices(pid).length > before.length);
    expect(threadNices(pid)).toEqual(threadNices(pid).map(() => 10));
  });

  it("leaves the process alone at 0, and says nothing of one that has exited", async () => {
    const idle = node("setInterval(() => {}, 1000)");
    expect(lowerPriority(idle.process, 0)).toBeUndefined();
    expect(threadNices(idle.process.pid as number).every((nice) => nice === 0)).toBe(true);

    const gone = node("");
    await gone.exited;
    expect(lowerPriority(gone.process, 10)).toBeUndefined();
  });
});

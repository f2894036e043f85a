/** The bench's CPU accounting from /proc (lib/local/cpu.ts), on a child that burns a known amount. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { expect, it } from "vitest";
import { cpuSeconds, treeCpuSeconds } from "../../lib/local/cpu";

// Burns 0.3 s of its own CPU (not of the clock: a busy machine only makes it take longer), says
// so, and stays until its stdin closes.
const BURN = `while (process.cpuUsage().user < 300_000);
process.stdout.write("burned\\n");
process.stdin.resume().on("end", () => process.exit(0));`;

// The seconds are ticks / 100, and a difference of two of them is not exact in floating point
// (1.5 - 1.04 is 0.45999999999999996): compare whole ticks.
const ticks = (seconds: number) => Math.round(seconds * 100);

it("counts a child's CPU while it runs and once it has ended, and nothing for a process that is gone", async () => {
  const before = treeCpuSeconds(process.pid) as number;
  const child = spawn(process.execPath, ["-e", BURN], { stdio: ["pipe", "pipe", "inherit"] });
  await once(child.stdout, "data");

  const own = cpuSeconds(child.pid) as number;
  expect(own).toBeGreaterThanOrEqual(0.3);
  // A live child: its own ticks.
  expect(ticks((treeCpuSeconds(process.pid) as number) - before)).toBeGreaterThanOrEqual(ticks(own));

  child.stdin.end();
  await once(child, "exit");
  // An ended child that was waited for: the parent's children's ticks.
  expect(ticks((treeCpuSeconds(process.pid) as number) - before)).toBeGreaterThanOrEqual(ticks(own));
  expect(cpuSeconds(child.pid)).toBeUndefined();
  expect(treeCpuSeconds(child.pid as number)).toBeUndefined();
});

/** `waitFor` retries a check that throws, until its timeout; a check's `WaitAborted` ends it at once. */
import { expect, it } from "vitest";
import { exited, exitedError, spawnProcess } from "../../lib/local/process";
import { WaitAborted, waitFor } from "../../lib/wait";

it("retries a check that throws, and names the last error at the timeout", async () => {
  let calls = 0;
  const waiting = waitFor(
    "a flaky thing",
    () => {
      calls += 1;
      throw new Error(`not yet (${calls})`);
    },
    { timeoutMs: 200, intervalMs: 10 },
  );
  await expect(waiting).rejects.toThrow(/^timed out after 200 ms waiting for a flaky thing: not yet \(\d+\)$/);
  expect(calls).toBeGreaterThan(1);
});

it("ends at the first WaitAborted, with its error, without waiting for the timeout", async () => {
  let calls = 0;
  const started = Date.now();
  const waiting = waitFor(
    "a process that exited",
    () => {
      calls += 1;
      if (calls === 2) throw new WaitAborted("ponder exited: its log");
      return false;
    },
    { timeoutMs: 60_000, intervalMs: 10 },
  );
  await expect(waiting).rejects.toBeInstanceOf(WaitAborted);
  await expect(waiting).rejects.toThrow("ponder exited: its log");
  expect(calls).toBe(2);
  expect(Date.now() - started).toBeLessThan(30_000);
});

it("exitedError names the process and waits for the last line written to its output after it exited", async () => {
  // As a wrapper such as scripts/start.ts: the process exits, and a child it started with the
  // same output writes why a moment later.
  const child = `process.stderr.write("the reason it stopped\\n")`;
  const program = `require("node:child_process").spawn(process.execPath, ["-e", ${JSON.stringify(child)}], { stdio: "inherit" }); process.exit(3);`;
  const proc = spawnProcess(process.execPath, ["-e", program], { PATH: process.env.PATH ?? "" });
  await proc.exited; // the "exit" event, the earliest a wait's check can see it
  expect(exited(proc)).toBe(true);
  const error = await exitedError(proc, "demo");
  expect(error).toBeInstanceOf(WaitAborted);
  expect(error.message).toBe("demo exited:\nthe reason it stopped\n");
});

/** `waitFor` retries a check that throws, until its timeout; a check's `WaitAborted` ends it at once. */
import { expect, it } from "vitest";
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
  await expect(waiting).rejects.toThrow(new WaitAborted("ponder exited: its log"));
  expect(calls).toBe(2);
  expect(Date.now() - started).toBeLessThan(30_000);
});

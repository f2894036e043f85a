/**
 * Assumption: Ponder's crash recovery (every `ponder start` on its schema) waits for stake_event
 * holding no lock on `_ponder_checkpoint` that a reader's ACCESS SHARE waits for: it drops its
 * triggers and indexes on the user tables, which takes stake_event, before it drops the
 * live-query trigger on the checkpoint table. The sidecar's step locks stake_event first and then
 * reads `_ponder_checkpoint` (read-progress.ts), as beside a reorg (reorg-lock-order): a crash
 * recovery that took the checkpoint table first would deadlock with a step at every restart, and
 * Ponder's start, chosen as the victim, would retry after a growing wait: a slow restart, not an
 * error anyone sees.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { throwIfExited } from "../../lib/local/process";
import { WaitAborted, waitFor } from "../../lib/wait";
import {
  checkpointLocks,
  cleanup,
  releaseSchemaLock,
  spawnPonder,
  startStack,
  waitIndexed,
  waitingForEvents,
  waitReady,
} from "./harness";

afterAll(cleanup);

describe("crash-recovery-lock-order", () => {
  it("a restart's crash recovery that waits for stake_event holds no lock on _ponder_checkpoint that a reader waits for", async () => {
    const { chain, databaseUrl, schema, env, ponder } = await startStack();
    await ponder.stop(); // SIGTERM: the next start on the schema runs crash recovery
    await releaseSchemaLock(databaseUrl, schema);

    // A reader holding stake_event, as the sidecar's step does; then Ponder's start.
    const reader = new pg.Client({ connectionString: databaseUrl });
    let second: Awaited<ReturnType<typeof spawnPonder>> | undefined;
    try {
      await reader.connect();
      const readerPid = (reader as unknown as { processID: number }).processID;
      await reader.query(`BEGIN; LOCK TABLE "${schema}".stake_event IN ACCESS SHARE MODE`);
      const restarted = await spawnPonder(env);
      second = restarted;
      const waiting = () => waitingForEvents(databaseUrl, schema, readerPid);
      // As long as a start may take (waitReady's bound): its build and its checks come first.
      await waitFor(
        "Ponder's crash recovery to wait for stake_event",
        async () => {
          await throwIfExited(restarted, "ponder");
          return (await waiting()) !== undefined;
        },
        { timeoutMs: 120_000 },
      ).catch((error: Error) => {
        if (error instanceof WaitAborted) throw error; // Ponder exited: its log is in the error
        // Ponder logs this before its recovery's first statement on the user tables.
        const recovering = restarted.output().includes("Detected crash recovery");
        throw new Error(
          recovering
            ? `assumption crash-recovery-lock-order: Ponder's crash recovery takes stake_event (it never waited for it): ${error.message}\nPonder's log ends:\n${restarted.output().slice(-3000)}`
            : `Ponder never reached its crash recovery (not an assumption of the sidecar's): ${error.message}\nPonder's log ends:\n${restarted.output().slice(-3000)}`,
        );
      });
      const pid = (await waiting()) as number;
      expect(
        (await checkpointLocks(databaseUrl, schema, pid)).filter((mode) => mode === "AccessExclusiveLock"),
        "assumption crash-recovery-lock-order: Ponder's crash recovery takes no lock on _ponder_checkpoint that conflicts with a read (ACCESS EXCLUSIVE) before it has stake_event",
      ).toEqual([]);
      // What the sidecar's step does next, beside the waiting recovery: it reads the checkpoint.
      const read = await reader
        .query(`SET LOCAL lock_timeout = '5s'; SELECT latest_checkpoint FROM "${schema}"._ponder_checkpoint`)
        .then(
          () => "read",
          (error: Error) => error.message,
        );
      expect(
        read,
        "assumption crash-recovery-lock-order: a reader holding stake_event reads _ponder_checkpoint beside a waiting crash recovery",
      ).toBe("read");
    } finally {
      await reader.query("ROLLBACK").catch(() => undefined);
      await reader.end().catch(() => undefined);
    }
    // Released, the recovery goes on and Ponder gets ready.
    await waitReady(second);
    await waitIndexed(databaseUrl, schema, chain, second);
  });
});

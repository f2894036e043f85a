/**
 * Assumption: Ponder's reorg transaction locks `stake_event` before `_ponder_checkpoint` (it drops
 * its triggers on the user tables first, then the live-query trigger on the checkpoint table).
 * The sidecar's reads that take both (sidecar/sync/sql/read-progress.ts) lock them in that order,
 * so a read beside a reorg waits for it; in the other order the two deadlocked and Ponder, chosen
 * as the victim, backed off for a minute. And sidecar/indexer-watch.ts reads a lock on
 * `_ponder_checkpoint` that lasts as Ponder frozen inside such a transaction.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { checkpointLocks, cleanup, head, mine, stakeToOrphan, startStack, waitingForEvents } from "./harness";

afterAll(cleanup);

describe("reorg-lock-order", () => {
  it("a realtime reorg that waits for stake_event holds no lock on _ponder_checkpoint meanwhile", async () => {
    const stack = await startStack();
    const { chain, databaseUrl, schema, developers, ponder } = stack;
    const [victim, survivor] = developers as [`0x${string}`, `0x${string}`];
    const { orphan, rows: orphanRows, revert } = await stakeToOrphan(stack, victim);

    // A reader holding stake_event, as the sidecar's step does; then the reorg.
    const reader = new pg.Client({ connectionString: databaseUrl });
    await reader.connect();
    try {
      await reader.query(`BEGIN; LOCK TABLE "${schema}".stake_event IN ACCESS SHARE MODE`);
      await revert();
      await chain.vault.stakeFor(survivor, 1n);
      await mine(chain, 1);
      expect(await head(chain)).toBe(Number(orphan.blockNumber) + 1);
      // Ponder's reorg transaction, waiting for the reader's lock on stake_event.
      const waiting = () =>
        waitingForEvents(databaseUrl, schema, (reader as unknown as { processID: number }).processID);
      await waitFor("Ponder's reorg to wait for stake_event", async () => (await waiting()) !== undefined, {
        timeoutMs: 60_000,
      }).catch((error: Error) => {
        throw new Error(
          `assumption reorg-lock-order: Ponder's reorg transaction takes stake_event (it never waited for it): ${error.message}\nPonder's log ends:\n${ponder.output().slice(-3000)}`,
        );
      });
      const pid = (await waiting()) as number;
      expect(
        await checkpointLocks(databaseUrl, schema, pid),
        "assumption reorg-lock-order: Ponder's reorg transaction locks stake_event before _ponder_checkpoint (it holds no lock on _ponder_checkpoint while it waits for stake_event)",
      ).toEqual([]);
    } finally {
      await reader.query("ROLLBACK").catch(() => undefined);
      await reader.end();
    }
    // Released, the reorg goes on.
    await waitFor("the reorg to be applied", async () => (await orphanRows()) === 0, { timeoutMs: 60_000 });
  });
});

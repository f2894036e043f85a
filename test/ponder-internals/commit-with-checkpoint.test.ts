/**
 * Assumption: Ponder writes a block's stake_event rows in the same transaction as the
 * `_ponder_checkpoint` update that covers them, in its backfill (each batch: rows, then latest,
 * safe and finalized set to the batch's end) and in realtime (each block: rows, then latest), and
 * no earlier transaction commits a checkpoint that covers them. The sidecar trusts a checkpoint to
 * mean the rows up to it are there: it moves its cursor to Ponder's confirmed block (latest, or
 * safe while Ponder is not ready) and folds the events up to the finalized one into sums it never
 * compares again (windows.ts, read-progress.ts). A Ponder that committed a checkpoint before the
 * rows under it would have the sidecar pass those rows for good.
 *
 * Observed with row triggers logging txid_current(): no timing involved.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  cleanup,
  formatLog,
  installObserver,
  mine,
  type ObsRow,
  observed,
  releaseSchemaLock,
  startPonderWith,
  startStack,
  waitIndexed,
} from "./harness";

afterAll(cleanup);

/** A checkpoint write's new block numbers, latest and safe (the obs log's detail). */
const covers = (write: ObsRow) => Math.max(Number(write.detail.new_latest ?? -1), Number(write.detail.new_safe ?? -1));

describe("commit-with-checkpoint", () => {
  it("each stake_event row is committed with the _ponder_checkpoint update that covers its block, in the backfill and in realtime, and no earlier transaction's checkpoint covers it", async () => {
    const { chain, databaseUrl, schema, env, developers, ponder } = await startStack();
    await installObserver(databaseUrl, schema, { inserts: true });
    const [a, b, c] = developers as [`0x${string}`, `0x${string}`, `0x${string}`];

    // Realtime: a block with a stake.
    await chain.vault.stakeFor(a, 11n);
    await waitIndexed(databaseUrl, schema, chain, ponder);
    // Stopped, the chain moves on: a stake and 40 blocks, so that on its restart Ponder's crash
    // recovery deletes the realtime row (not final) and its backfill writes it again with the new
    // one (final by then), batch by batch.
    await ponder.stop();
    await releaseSchemaLock(databaseUrl, schema);
    await chain.vault.stakeFor(b, 22n);
    await mine(chain, 40);
    const second = await startPonderWith(env);
    await waitIndexed(databaseUrl, schema, chain, second);
    // Realtime again, after the restart.
    await chain.vault.stakeFor(c, 33n);
    await waitIndexed(databaseUrl, schema, chain, second);
    await second.stop();

    const log = await observed(databaseUrl);
    const inserts = log.filter((r) => r.tbl === "stake_event" && r.op === "INSERT");
    const writes = log.filter((r) => r.tbl === "_ponder_checkpoint" && r.op !== "DELETE");
    // The realtime stake before the stop, written again by the backfill after it; the stake made
    // while stopped; the realtime stake after the restart.
    expect(inserts.length, `the test saw Ponder write its four rows (else it proves nothing)\n${formatLog(log)}`).toBe(
      4,
    );
    const backfilled = inserts.filter((i) =>
      writes.some((w) => w.txid === i.txid && w.detail.new_safe === w.detail.new_latest),
    );
    expect(backfilled.length, `two of them by the backfill after the restart\n${formatLog(log)}`).toBe(2);

    for (const insert of inserts) {
      const block = insert.block as number;
      expect(
        writes.some((w) => w.txid === insert.txid && Number(w.detail.new_latest) >= block),
        `assumption commit-with-checkpoint: the transaction that writes a stake_event row of block ${block} also moves _ponder_checkpoint's latest to it or past it\n${formatLog(log)}`,
      ).toBe(true);
      // Since the last deletion before it (a crash recovery deletes rows under a checkpoint that
      // still covers them: crash-recovery pins that, and the sidecar reads it by is_ready).
      const since = Math.max(0, ...log.filter((r) => r.op === "DELETE" && r.seq < insert.seq).map((r) => r.seq));
      const earlier = writes.filter(
        (w) => w.seq > since && w.seq < insert.seq && w.txid !== insert.txid && covers(w) >= block,
      );
      expect(
        earlier,
        `assumption commit-with-checkpoint: no transaction before the one that writes a stake_event row of block ${block} commits a checkpoint (latest or safe) at or past that block\n${formatLog(log)}`,
      ).toEqual([]);
    }
  });
});

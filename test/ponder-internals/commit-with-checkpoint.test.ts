/**
 * Assumption: Ponder commits a block's stake_event rows in the transaction that moves
 * `_ponder_checkpoint` over them (a backfill batch: latest, safe and finalized to the batch's
 * end; a realtime block: latest), and no earlier transaction commits a checkpoint the sidecar
 * trusts (trustedBlock: latest once ready; while not ready, the block before min(latest, safe))
 * at or past their block. The sidecar moves its cursor to what it trusts, less CONFIRMATIONS, and
 * folds the events up to the finalized block into sums it never compares again (windows.ts): a
 * checkpoint committed before the rows under it would have it pass those rows for good.
 *
 * Why not the checkpoint's own block while Ponder backfills: on 0.17.7 a backfill batch whose
 * query stopped at the block before its range's last (here: its 6,006-row limit reached inside
 * that block) carries the range's last checkpoint, and that block's rows come in the next batch
 * (runtime/historical.ts, `cursor >= toBlock` yields `params.to`). The second test makes that case
 * and pins that it is the only one: should a Ponder upgrade no longer split, it fails saying so,
 * and trustedBlock's "- 1" can go.
 *
 * Observed with row triggers logging txid_current(): no timing involved.
 */
import type { Address } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { trustedBlock } from "../../sidecar/sync/sql/read-progress";
import { chainEnv, freshDatabase, startChain } from "../helpers/stack";
import { wallets } from "../helpers/workload";
import {
  cleanup,
  formatLog,
  installObserver,
  installObserverAtCreate,
  mine,
  type ObsRow,
  observed,
  releaseSchemaLock,
  startPonderWith,
  startStack,
  waitIndexed,
} from "./harness";

afterAll(cleanup);

/** Whether Ponder was ready at each checkpoint write, by the `_ponder_meta` writes before it. */
function trusted(log: ObsRow[], write: ObsRow, readyAtStart: boolean): number {
  const meta = log.filter((r) => r.tbl === "_ponder_meta" && r.seq < write.seq && r.detail.is_ready !== undefined);
  const ready = meta.length > 0 ? meta[meta.length - 1]?.detail.is_ready === 1 : readyAtStart;
  return trustedBlock({ ready, latest: Number(write.detail.new_latest), safe: Number(write.detail.new_safe) });
}

/** Every inserted row against the checkpoint writes around it; the rows inserted. */
function expectRowsCommittedWithTheirCheckpoint(log: ObsRow[], readyAtStart: boolean) {
  const writes = log
    .filter((r) => r.tbl === "_ponder_checkpoint" && r.op !== "DELETE")
    .map((w) => ({ ...w, trusted: trusted(log, w, readyAtStart) }));
  const inserts: ObsRow[] = [];
  // Since the last deletion: a crash recovery deletes rows under a checkpoint that still covers
  // them (crash-recovery pins that; the sidecar reads it by is_ready).
  let since = 0;
  for (const row of log) {
    if (row.op === "DELETE") since = row.seq;
    if (row.tbl !== "stake_event" || row.op !== "INSERT") continue;
    inserts.push(row);
    const block = row.block as number;
    // The messages are built on a failure only: the log runs to thousands of lines.
    const committed = writes.some((w) => w.txid === row.txid && Number(w.detail.new_latest) >= block);
    if (!committed)
      expect(
        committed,
        `assumption commit-with-checkpoint: the transaction that writes a stake_event row of block ${block} also moves _ponder_checkpoint's latest to it or past it\n${formatLog(log)}`,
      ).toBe(true);
    const earlier = writes.filter((w) => w.seq > since && w.seq < row.seq && w.txid !== row.txid && w.trusted >= block);
    if (earlier.length > 0)
      expect(
        earlier,
        `assumption commit-with-checkpoint: no transaction before the one that writes a stake_event row of block ${block} commits a checkpoint the sidecar trusts at or past that block (trustedBlock)\n${formatLog(log)}`,
      ).toEqual([]);
  }
  return inserts;
}

describe("commit-with-checkpoint", () => {
  it("each stake_event row is committed with the _ponder_checkpoint update over its block, in the backfill and in realtime, and no earlier checkpoint the sidecar trusts covers it", async () => {
    const { chain, databaseUrl, schema, env, developers, ponder } = await startStack();
    await installObserver(databaseUrl, schema, { inserts: true });
    const [a, b, c] = developers as [Address, Address, Address];

    // Realtime: a block with a stake.
    await chain.vault.stakeFor(a, 11n);
    await waitIndexed(databaseUrl, schema, chain, ponder);
    // Stopped, the chain moves on: a stake and 40 blocks, so that on its restart Ponder's crash
    // recovery deletes the realtime row (not final) and its backfill writes it again with the new
    // one (final by then).
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
    const inserts = expectRowsCommittedWithTheirCheckpoint(log, true);
    // The realtime stake before the stop, written again by the backfill after it; the stake made
    // while stopped; the realtime stake after the restart.
    expect(inserts.length, `the test saw Ponder write its four rows (else it proves nothing)\n${formatLog(log)}`).toBe(
      4,
    );
  });

  it("a backfill batch stopped by its row limit inside its range's last block carries that block's checkpoint, and nothing past it", async () => {
    const chain = await startChain();
    const databaseUrl = await freshDatabase();
    await chain.vault.fund(10n ** 12n);
    // 6,000 events in 12 blocks, then 20 in block `last`: Ponder's query of a one-chain backfill
    // takes 6,006 log rows (its events query size, 12,000, halved, plus 6), which ends 6 rows into
    // `last`; its range ends at `last` (the finalized block: the head less chain 31337's 30).
    const many = wallets(500, "split");
    for (let i = 0; i < 12; i++)
      await chain.vault.stakeForMany(
        many,
        many.map(() => 1n),
      );
    const receipt = await chain.vault.stakeForMany(many.slice(0, 20), new Array(20).fill(1n));
    const last = Number(receipt.blockNumber);
    await mine(chain, 30);
    const schema = `pi_${Math.random().toString(36).slice(2, 10)}`;
    await installObserverAtCreate(databaseUrl, schema, { inserts: true });
    const ponder = await startPonderWith({ ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema });
    await waitIndexed(databaseUrl, schema, chain, ponder);
    await ponder.stop();

    const log = await observed(databaseUrl);
    const inserts = expectRowsCommittedWithTheirCheckpoint(log, false);
    expect(inserts.length, "Ponder wrote every event").toBe(6_020);
    // The split itself: a checkpoint at `last` committed before `last`'s rows.
    const ahead = log.filter(
      (w) =>
        w.tbl === "_ponder_checkpoint" &&
        Number(w.detail.new_latest) === last &&
        inserts.some((i) => i.block === last && i.seq > w.seq && i.txid !== w.txid),
    );
    expect(
      ahead.length,
      `assumption commit-with-checkpoint: a backfill batch that ends before its range's last block (${last}) carries that block's checkpoint, its rows in the next batch (if not, a Ponder upgrade fixed it, and trustedBlock need not hold back a backfill's checkpoint block)\n${formatLog(log.filter((r) => r.tbl !== "stake_event" || r.block === last))}`,
    ).toBeGreaterThan(0);
  });
});

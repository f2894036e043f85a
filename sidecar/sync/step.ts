/**
 * One sync step, one REPEATABLE READ transaction: Ponder's confirmed events since the cursor (and
 * any change to the not-yet-final ones already applied) → chain_stake → developer_queue → cursor.
 * Killing the process at any point rolls the whole step back; the next step redoes it. The queue
 * is written to developers right after, in a transaction of its own (apply-developers.ts).
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import type { Queryable } from "../db/queryable";
import { readProgress } from "./ponder";
import { createAffected, queueDevelopers } from "./queue-developers";
import { findRegistrations, reconcileInStep } from "./reconcile";
import { eventKey, signedAmount } from "./sql";

export type ChainStep = {
  chainId: number;
  /** The window diffed: (from, to]. */
  from: number;
  to: number;
  added: number;
  removed: number;
};
export type StepResult = {
  chains: ChainStep[];
  /** Chains left out of this step: removals seen that no later checkpoint has confirmed yet. */
  deferred: number[];
  /** With `reconcile`: (chain, wallet) stakes that had drifted from Ponder, repaired. */
  drifted: number;
  /** Ponder's tables are not there yet: nothing was read. */
  waitingForPonder: boolean;
  /** A chain was stepped while Ponder backfills it. */
  catchUp: boolean;
};

/**
 * While Ponder backfills a chain: "no" leaves it for a later step, "near-end" steps it once the
 * window is NEAR_END of what is left to the head, "due" steps it whatever the window. A step near
 * the end leaves little for the step after Ponder is ready, which rewrites every developer again.
 */
export type CatchUp = "no" | "near-end" | "due";
const NEAR_END = 0.8;

/**
 * Ponder commits a reorg's row deletions without touching `_ponder_checkpoint`; the next block's
 * transaction moves it, with the new fork's rows. In between, its tables lack the orphaned events
 * *and* the new fork's, while the checkpoint still vouches for those blocks. Crash recovery at a
 * restart looks the same (rows gone, checkpoint unchanged), with is_ready 0. So an applied event
 * that Ponder no longer has is a removal only once Ponder is ready and its checkpoint has moved
 * since the removal was first seen; until then that chain is left out of the step. No timer:
 * a slow restart can outlast any. Chain id → the checkpoint under which the removal was seen.
 */
export type RemovalGuard = Map<number, { checkpoint: string }>;

type Cursor = { block: number; finalBlock: number };

export async function readCursors(db: Queryable, config: SidecarConfig): Promise<Map<number, Cursor>> {
  const { rows } = await db.query<{ chain_id: number; block: string; final_block: string }>(
    "SELECT chain_id, block, final_block FROM stakesync.cursor",
  );
  const saved = new Map(rows.map((r) => [r.chain_id, { block: Number(r.block), finalBlock: Number(r.final_block) }]));
  return new Map(
    config.chains.map((c) => [c.id, saved.get(c.id) ?? { block: c.startBlock - 1, finalBlock: c.startBlock - 1 }]),
  );
}

/**
 * Runs in the caller's connection; the caller holds the leader lock on it. With `reconcile`,
 * a full reconciliation follows the step's diff in the same transaction.
 */
export async function syncStep(
  db: pg.ClientBase,
  config: SidecarConfig,
  guard: RemovalGuard,
  {
    reconcile = false,
    heads,
    catchUp,
  }: {
    reconcile?: boolean;
    heads: Map<number, Head>;
    catchUp: CatchUp;
  },
): Promise<StepResult> {
  await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
  // A catch-up step sorts tens of thousands of events: in memory, not in temp files. And it
  // runs on one core: parallel workers would take the machine from Ponder's backfill.
  await db.query("SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0");
  try {
    const result = await stepInTransaction(db, config, guard, reconcile, heads, catchUp);
    await db.query("COMMIT");
    return result;
  } catch (error) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

async function stepInTransaction(
  db: pg.ClientBase,
  config: SidecarConfig,
  guard: RemovalGuard,
  reconcile: boolean,
  heads: Map<number, Head>,
  catchUp: CatchUp,
): Promise<StepResult> {
  const idle = { chains: [], deferred: [], drifted: 0, waitingForPonder: false, catchUp: false };
  const progress = await readProgress(db, config.ponderSchema, { lockEvents: true });
  if (!progress) return { ...idle, waitingForPonder: true };
  const cursors = await readCursors(db, config);

  // Per chain: the confirmed target, and the window whose applied events are diffed against Ponder.
  let windows = config.chains.flatMap((chain) => {
    const p = progress.get(chain.id);
    const cursor = cursors.get(chain.id) as Cursor;
    if (!p) return [];
    const target = p.indexed - chain.confirmations;
    // Ponder behind our cursor: it is reindexing or undoing a reorg; wait until it is past us.
    if (target < cursor.block) return [];
    // Ponder backfilling: each step rewrites every developer it touches and competes with Ponder
    // for the machine. Step once the window reaches the head; before, only as the loop allows.
    const head = heads.get(chain.id)?.block;
    const left = head === undefined ? undefined : head - chain.confirmations - cursor.block;
    const span = target - cursor.block;
    const reachesHead = left !== undefined && span >= left;
    const nearEnd = left !== undefined && span >= left * NEAR_END;
    const catchUpNow = catchUp === "due" || (catchUp === "near-end" && nearEnd);
    if (!p.ready && !reachesHead && !catchUpNow) return [];
    // Every applied event still in the ledger (above the cursor's final block) is compared with
    // Ponder, even when Ponder has finalized past it meanwhile: a deep reorg that happened while
    // no step ran must still be diffed before the ledger forgets those events.
    const lower = cursor.finalBlock;
    const finalBlock = Math.max(cursor.finalBlock, Math.min(p.finalized, target));
    return [{ chainId: chain.id, cursor: cursor.block, lower, target, finalBlock, progress: p }];
  });
  // A removal seen before a chain went without a window (Ponder lowered its checkpoint below the
  // cursor) must be seen again, and confirmed afresh, once it has one.
  for (const chainId of guard.keys()) if (!windows.some((w) => w.chainId === chainId)) guard.delete(chainId);
  if (windows.length === 0 && !reconcile) return idle;

  const col = <K extends keyof (typeof windows)[number]>(key: K) => windows.map((w) => w[key]);
  await db.query(
    `CREATE TEMP TABLE sync_window ON COMMIT DROP AS
       SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
         AS w(chain_id, cursor, lower, target, final_block)`,
    [col("chainId"), col("cursor"), col("lower"), col("target"), col("finalBlock")],
  );
  // The difference between what Ponder has confirmed in each window and what was applied.
  // Events at or below the cursor were applied before: diffed one by one, `added` ones were
  // brought by a reorg and `removed` ones were orphaned by it. Events above the cursor are new:
  // those above the new final block are kept one by one (they may still be orphaned); the final
  // ones only as a sum per wallet, with the wallet's latest event (a catch-up has thousands):
  // Ponder's event ids sort in the order the events happened.
  // LATERAL: while Ponder backfills its table has no index, and a join on the window would sort
  // all of it on every step.
  await db.query(
    `CREATE TEMP TABLE sync_delta ON COMMIT DROP AS
     WITH event AS (
       SELECT e.chain_id, e.id, e.transaction_hash, e.developer AS wallet, e.block_number, e.block_timestamp,
              e.log_index, ${signedAmount("e")} AS delta,
              e.block_number <= w.cursor AS late, e.block_number > w.final_block AS tracked
         FROM sync_window w
        CROSS JOIN LATERAL (
          SELECT * FROM "${config.ponderSchema}".stake_event e
           WHERE e.chain_id = w.chain_id AND e.block_number > w.lower AND e.block_number <= w.target
          OFFSET 0) e
     ),
     desired AS (
       SELECT chain_id, ${eventKey("event")} AS event_key, wallet, delta, block_number, block_timestamp,
              transaction_hash, log_index, late
         FROM event WHERE late OR tracked
     ),
     applied AS (
       SELECT a.* FROM sync_window w
         JOIN stakesync.applied_event a ON a.chain_id = w.chain_id AND a.block_number > w.lower
     )
     SELECT 'added' AS change, d.chain_id, d.event_key, d.wallet, d.delta, d.block_number,
            d.block_timestamp, d.transaction_hash, d.log_index, d.late, 1 AS events
       FROM desired d
      WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.chain_id = d.chain_id AND a.event_key = d.event_key)
     UNION ALL
     SELECT 'removed', a.chain_id, a.event_key, a.wallet, -a.delta, a.block_number, NULL, NULL, NULL, true, 1
       FROM applied a
      WHERE NOT EXISTS (SELECT 1 FROM desired d WHERE d.chain_id = a.chain_id AND d.event_key = a.event_key)
     UNION ALL
     SELECT 'added', f.chain_id, NULL, f.wallet, f.delta, e.block_number, f.block_timestamp, e.transaction_hash,
            e.log_index, false, f.events
       FROM (SELECT chain_id, wallet, sum(delta) AS delta, count(*) AS events, max(block_timestamp) AS block_timestamp,
                    max(id COLLATE "C") AS last
               FROM event WHERE NOT (late OR tracked) GROUP BY chain_id, wallet) f
       JOIN event e ON e.id = f.last`,
  );

  const counts = await db.query<{ chain_id: number; added: string; removed: string }>(
    `SELECT chain_id, sum(events) FILTER (WHERE change = 'added') AS added, count(*) FILTER (WHERE change = 'removed') AS removed
       FROM sync_delta GROUP BY chain_id`,
  );
  const countOf = new Map(counts.rows.map((r) => [r.chain_id, r]));
  const deferred = windows
    .filter((w) => {
      if (Number(countOf.get(w.chainId)?.removed ?? 0) === 0) {
        guard.delete(w.chainId);
        return false;
      }
      // Not ready: a restart's crash recovery (or a backfill) is under way; nothing it shows is
      // a reorg yet. Ready: the first sighting notes the checkpoint, a later one confirms.
      if (!w.progress.ready) {
        guard.delete(w.chainId);
        return true;
      }
      const seen = guard.get(w.chainId);
      if (seen !== undefined && seen.checkpoint !== w.progress.checkpoint) {
        guard.delete(w.chainId);
        return false;
      }
      if (seen === undefined) guard.set(w.chainId, { checkpoint: w.progress.checkpoint });
      return true;
    })
    .map((w) => w.chainId);
  // A chain stepped while Ponder backfills counts as a catch-up even when its removals wait: the
  // loop's catch-up share then still spaces these steps out.
  const catchingUp = windows.some((w) => !w.progress.ready);
  if (deferred.length > 0) {
    await db.query("DELETE FROM sync_delta WHERE chain_id = ANY($1::int[])", [deferred]);
    await db.query("DELETE FROM sync_window WHERE chain_id = ANY($1::int[])", [deferred]);
    windows = windows.filter((w) => !deferred.includes(w.chainId));
    if (windows.length === 0 && !reconcile) return { ...idle, deferred, catchUp: catchingUp };
  }

  // Only events above the new final block are tracked one by one.
  await db.query(
    `DELETE FROM stakesync.applied_event a USING sync_delta d
      WHERE d.change = 'removed' AND a.chain_id = d.chain_id AND a.event_key = d.event_key`,
  );
  await db.query(
    `DELETE FROM stakesync.applied_event a USING sync_window w
      WHERE a.chain_id = w.chain_id AND a.block_number <= w.final_block`,
  );
  await db.query(
    `INSERT INTO stakesync.applied_event (chain_id, event_key, wallet, delta, block_number)
     SELECT d.chain_id, d.event_key, d.wallet, d.delta, d.block_number
       FROM sync_delta d JOIN sync_window w ON w.chain_id = d.chain_id
      WHERE d.change = 'added' AND d.block_number > w.final_block`,
  );
  await db.query(
    `INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block)
     SELECT wallet, chain_id, sum(delta), max(block_number) FROM sync_delta GROUP BY wallet, chain_id
     ON CONFLICT (wallet, chain_id) DO UPDATE
        SET amount = chain_stake.amount + excluded.amount,
            last_block = GREATEST(chain_stake.last_block, excluded.last_block),
            updated_at = now()`,
  );

  // One row per wallet: the latest added event names the block and transaction of the change.
  await createAffected(db);
  await db.query(
    `INSERT INTO affected (wallet, chain_id, block_number, transaction_hash, block_timestamp, reason)
     SELECT DISTINCT ON (wallet) wallet, chain_id, block_number, transaction_hash,
            max(block_timestamp) OVER (PARTITION BY wallet),
            CASE WHEN bool_or(late) OVER (PARTITION BY wallet) THEN 'reorg' ELSE 'stake' END
       FROM sync_delta
      ORDER BY wallet, change = 'added' DESC, block_number DESC, log_index DESC NULLS LAST`,
  );
  await findRegistrations(db, config);

  const confirmed = new Map(
    config.chains.map((c) => {
      const w = windows.find((x) => x.chainId === c.id);
      return [c.id, w ? w.target : (cursors.get(c.id) as Cursor).block];
    }),
  );
  // Only chains Ponder has caught up on are reconciled: it may be reindexing the others.
  const drifted = reconcile
    ? await reconcileInStep(
        db,
        config,
        windows.map((w) => ({ chainId: w.chainId, cursor: w.target, finalBlock: w.finalBlock })),
      )
    : 0;
  await queueDevelopers(db, config, confirmed);

  await db.query(
    `INSERT INTO stakesync.cursor (chain_id, block, final_block)
     SELECT chain_id, target, final_block FROM sync_window
     ON CONFLICT (chain_id) DO UPDATE
        SET block = excluded.block, final_block = excluded.final_block, updated_at = now()`,
  );

  return {
    deferred,
    waitingForPonder: false,
    catchUp: catchingUp,
    drifted,
    chains: windows.map((w) => ({
      chainId: w.chainId,
      from: w.lower,
      to: w.target,
      added: Number(countOf.get(w.chainId)?.added ?? 0),
      removed: Number(countOf.get(w.chainId)?.removed ?? 0),
    })),
  };
}

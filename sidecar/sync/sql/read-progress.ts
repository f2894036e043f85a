/** What the sidecar reads of Ponder: per-chain progress from `_ponder_checkpoint`. */
import type { Queryable } from "../../db/queryable";
import { inline, lastRows, type Statements, yes } from "../../db/together";
import { checkpointBlock } from "./fragments";

/**
 * `checkpoint` is the raw latest checkpoint: it changes with every block Ponder commits.
 * `ready` is Ponder's own (it serves /ready): false while it backfills or catches up.
 * `indexed` is the block up to which Ponder's rows can be trusted (see `trustedBlock`).
 */
export type PonderProgress = {
  chainId: number;
  indexed: number;
  /** The block in latest_checkpoint, whatever Ponder is doing. */
  latest: number;
  finalized: number;
  checkpoint: string;
  ready: boolean;
  /**
   * Not ready, and building its indexes: Ponder does so once its backfill has committed its last
   * batch (every chain's), just before it turns ready (test/ponder-internals/backfill-indexes.test.ts).
   * Told by the SHARE lock its CREATE INDEX holds on stake_event, which pg_locks shows any role;
   * a views schema's stake_event is a view, never locked so, and shows nothing.
   */
  indexing: boolean;
  /**
   * The OID of Ponder's `reorg` trigger on stake_event (behind a views schema's view too), which
   * each reorg transaction creates anew: see reorg-watch.ts. Null where there is none (Ponder not
   * ready yet), or where the read was not asked for it (`reorgTable`).
   */
  reorgs: string | null;
  /**
   * Whether that trigger was created after this chain's checkpoint was last written (the row's
   * xmin against the trigger's): a reorg transaction committed since the chain's last block, its
   * rows deleted and its checkpoint not lowered yet (reorg-watch.ts). False where `reorgs` is null.
   */
  reorgAfter?: boolean;
  /**
   * The OID of the relation named `schema`.stake_event (a table, or a views schema's view): a
   * name's look-up, changed by a redeploy that makes the views anew or a `ponder dev` restart
   * that makes the table anew, which drops what the sidecar knew of the table behind it
   * (reorg-watch.ts, durable-ponder.ts). Unset where not read.
   */
  rel?: string | null;
};

/**
 * Ponder's crash recovery, at every `ponder start` on an existing schema, deletes every row
 * above safe_checkpoint and sets is_ready to 0 in one transaction, but leaves latest_checkpoint
 * where it was until its first batch: for seconds (minutes behind a slow RPC) the checkpoint
 * vouches for rows that are gone. While it is not ready, Ponder writes latest = safe = finalized
 * with every backfill batch, so safe_checkpoint is the block its rows are complete to, restarted
 * or not, but for that block itself: a batch whose rows end at the block before its range's
 * last (its query hit its row limit inside that block, or its sync had got no further) is
 * committed with the range's last checkpoint, and that block's rows come with the next batch
 * (Ponder 0.17.7, runtime/historical.ts: `cursor >= toBlock` yields `params.to`). So the block of
 * a checkpoint is not trusted until Ponder is ready: with CONFIRMATIONS 0 the step would otherwise
 * take the block whole and fold it final, its missing rows passed for good
 * (test/ponder-internals/commit-with-checkpoint.test.ts). Not even while Ponder builds its indexes,
 * after its last batch: that is told by a lock (pg_locks), which a step reads live, after its
 * snapshot, which may predate the last batch; and an operator's index build takes the same lock.
 * The block held back is synced by the first step once Ponder is ready, a step of one block. Once
 * ready, realtime blocks advance latest_checkpoint with their rows.
 */
export function trustedBlock(p: { ready: boolean; latest: number; safe: number }) {
  return p.ready ? p.latest : Math.min(p.latest, p.safe) - 1;
}

/**
 * How the read waits for Ponder's own transactions (see progressStatements). `lockWaitMs` bounds
 * the wait for its locks, with `lockEvents` or without: a reorg and a crash recovery each drop
 * Ponder's triggers in their transaction, which locks stake_event and `_ponder_checkpoint`
 * exclusively until it ends, and a Ponder frozen inside one (SIGSTOP, a stalled VM, a session the
 * server still thinks alive) holds them for as long. A bounded read fails with 55P03.
 */
export type ProgressOptions = {
  lockEvents?: boolean;
  lockWaitMs?: number;
  /** The OID of the table whose `reorg` trigger is read (reorg-watch.ts reorgTable); none: not read. */
  reorgTable?: string | null;
  /**
   * The `_ponder_checkpoint` table beside it (quoted): asked, each chain's `reorgAfter` is read
   * from its row's xmin (a views schema's `_ponder_checkpoint` is a view, which has none). Only
   * at a term's first step or a switch's (reorg-watch.ts): a look at two catalogs it needs once.
   */
  reorgSince?: string;
};

/** PostgreSQL's lock_not_available: a lock_timeout ran out. */
export const LOCK_NOT_AVAILABLE = "55P03";

type ProgressRow = {
  chain_id: number;
  latest: string;
  safe: string;
  finalized: string;
  checkpoint: string;
  ready: boolean | null;
  indexing: boolean | null;
  reorgs: string | null;
  reorg_after: boolean | null;
  rel: string | null;
};

/**
 * A checkpoint is a 75-digit string; characters 27–42 are the block number. Null while Ponder
 * has not created its tables in `schema` (it is starting, or building a new schema): asked first,
 * unless `present` says already (the answer of `ponderPresent`, sent with the caller's BEGIN).
 * A table missing after that (renamed, dropped) is an error, not Ponder starting.
 */
export async function readProgress(
  db: Queryable,
  schema: string,
  options: ProgressOptions = {},
  present?: boolean,
): Promise<Map<number, PonderProgress> | null> {
  if (!(present ?? yes(await lastRows(db, ponderPresent(schema))))) return null;
  return progressFrom(await lastRows(db, progressStatements(schema, options)));
}

/** Whether Ponder has created its tables in `schema` (one row, `yes`). */
export function ponderPresent(schema: string): Statements {
  return [inline("SELECT to_regclass($1) IS NOT NULL AS yes", [`"${schema}"._ponder_checkpoint`])];
}

/** The statements of the read, for sending with others; the last one's rows go to progressFrom. */
export function progressStatements(
  schema: string,
  { lockEvents = false, lockWaitMs, reorgTable, reorgSince }: ProgressOptions = {},
): Statements {
  // For a transaction that reads the events next. Ponder undoes a reorg in one transaction that
  // locks stake_event, then _ponder_checkpoint (to drop its triggers). Read in the other order,
  // the two deadlocked, and Ponder, chosen as the victim, backed off for a minute. In Ponder's
  // order, the reader waits for the reorg instead.
  const lock = `LOCK TABLE "${schema}".stake_event IN ACCESS SHARE MODE`;
  // The bound stays for the rest of the transaction: sent alone, the read is one of its own. The
  // sync step sets its own for all of its statements (step.ts).
  const locks = [
    ...(lockWaitMs === undefined ? [] : [`SET LOCAL lock_timeout = '${lockWaitMs}ms'`]),
    ...(lockEvents ? [lock] : []),
  ];
  return [
    ...locks,
    `WITH app AS (SELECT value->>'is_ready' = '1' AS ready FROM "${schema}"._ponder_meta WHERE key = 'app')
     SELECT chain_id::int AS chain_id, latest_checkpoint AS checkpoint,
            ${checkpointBlock("latest_checkpoint")} AS latest,
            ${checkpointBlock("safe_checkpoint")} AS safe,
            ${checkpointBlock("finalized_checkpoint")} AS finalized,
            (SELECT ready FROM app) AS ready,
            -- Only while not ready: pg_locks is read then, not at every realtime round.
            CASE WHEN (SELECT ready FROM app) THEN false
                 ELSE EXISTS (SELECT 1 FROM pg_locks l
                               WHERE l.relation = to_regclass('"${schema}".stake_event')
                                 -- An OID is one database's: a copy of this one has the same.
                                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                                 AND l.mode = 'ShareLock' AND l.granted) END AS indexing,
            ${
              reorgTable === undefined || reorgTable === null
                ? "NULL::text"
                : `(SELECT t.oid::text FROM pg_trigger t WHERE t.tgrelid = ${Number(reorgTable)}::oid AND t.tgname = 'reorg')`
            } AS reorgs,
            ${
              reorgTable === undefined || reorgTable === null || reorgSince === undefined
                ? "NULL::boolean"
                : // Newer is younger: age() counts the transactions since, across wraparound.
                  `(SELECT age(t.xmin) < age(k.xmin) FROM pg_trigger t, ${reorgSince} k
                     WHERE t.tgrelid = ${Number(reorgTable)}::oid AND t.tgname = 'reorg' AND k.chain_id = c.chain_id)`
            } AS reorg_after,
            to_regclass('"${schema}".stake_event')::oid::text AS rel
       FROM "${schema}"._ponder_checkpoint c`,
  ];
}

/** Each chain's progress from the rows of progressStatements' last statement. */
export function progressFrom(rows: unknown[]): Map<number, PonderProgress> {
  return new Map(
    (rows as ProgressRow[]).map((r) => [
      r.chain_id,
      {
        chainId: r.chain_id,
        indexed: trustedBlock({ ready: r.ready === true, latest: Number(r.latest), safe: Number(r.safe) }),
        latest: Number(r.latest),
        finalized: Number(r.finalized),
        checkpoint: r.checkpoint,
        ready: r.ready === true,
        indexing: r.indexing === true,
        reorgs: r.reorgs ?? null,
        reorgAfter: r.reorg_after === true,
        rel: r.rel ?? null,
      },
    ]),
  );
}

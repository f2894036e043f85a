/** What the sidecar reads of Ponder: per-chain progress from `_ponder_checkpoint`. */
import type { Queryable } from "../db/queryable";

/**
 * `checkpoint` is the raw latest checkpoint: it changes with every block Ponder commits.
 * `ready` is Ponder's own (it serves /ready): false while it backfills or catches up.
 */
export type PonderProgress = {
  chainId: number;
  indexed: number;
  finalized: number;
  checkpoint: string;
  ready: boolean;
};

/**
 * A checkpoint is a 75-digit string; characters 27–42 are the block number. Null while Ponder
 * has not created its tables in `schema` (it is starting, or building a new schema).
 */
export async function readProgress(
  db: Queryable,
  schema: string,
  { lockEvents = false }: { lockEvents?: boolean } = {},
): Promise<Map<number, PonderProgress> | null> {
  const { rows: found } = await db.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
    `"${schema}"._ponder_checkpoint`,
  ]);
  if (!found[0]?.present) return null;
  // For a transaction that reads the events next. Ponder undoes a reorg in one transaction that
  // locks stake_event, then _ponder_checkpoint (to drop its triggers). Read in the other order,
  // the two deadlocked, and Ponder, chosen as the victim, backed off for a minute. In Ponder's
  // order, the reader waits for the reorg instead.
  if (lockEvents) await db.query(`LOCK TABLE "${schema}".stake_event IN ACCESS SHARE MODE`);
  const { rows } = await db.query<{
    chain_id: number;
    indexed: string;
    finalized: string;
    checkpoint: string;
    ready: boolean | null;
  }>(
    `SELECT chain_id::int AS chain_id, latest_checkpoint AS checkpoint,
            substring(latest_checkpoint from 27 for 16)::bigint AS indexed,
            substring(finalized_checkpoint from 27 for 16)::bigint AS finalized,
            (SELECT value->>'is_ready' = '1' FROM "${schema}"._ponder_meta WHERE key = 'app') AS ready
       FROM "${schema}"._ponder_checkpoint`,
  );
  return new Map(
    rows.map((r) => [
      r.chain_id,
      {
        chainId: r.chain_id,
        indexed: Number(r.indexed),
        finalized: Number(r.finalized),
        checkpoint: r.checkpoint,
        ready: r.ready === true,
      },
    ]),
  );
}

/**
 * Whether the queue's developers write is failing as a whole, kept in
 * stakesync.developers_write_failing (migration 015) for every sidecar's /ready: the leader notes
 * each failed try (when, and its error, redacted), and clears it once a write succeeds.
 */
import type { Queryable } from "../../db/queryable";

/**
 * A failed try this recent keeps the failure current; longer ago, the row is stale: the write
 * is tried at least every MAX_BACKOFF_MS (a minute) while it fails, so this is two tries and a margin.
 */
export const WRITE_FAILING_CURRENT_S = 150;

/**
 * A failed try: its time and error. An episode begins anew after a stale row, unless this
 * leader's term has failed before (`again`): tries may stop for longer than the staleness while
 * the write still fails (Ponder away, failed steps backing off), and that is the same episode.
 */
export async function noteWriteFailing(db: Queryable, error: string, again: boolean) {
  await db.query(
    `INSERT INTO stakesync.developers_write_failing (last_error) VALUES ($1)
     ON CONFLICT (only_row) DO UPDATE
       SET last_error = $1, failed_at = now(),
           since = CASE WHEN NOT $2 AND developers_write_failing.failed_at < now() - interval '${WRITE_FAILING_CURRENT_S} seconds'
                        THEN now() ELSE developers_write_failing.since END`,
    [error.slice(0, 1000), again],
  );
}

/** Clears it: a write succeeded. */
export async function clearWriteFailing(db: Queryable) {
  await db.query("DELETE FROM stakesync.developers_write_failing");
}

/** Whether it is noted now (a new leader learns whether the last one left it). */
export async function writeFailingNoted(db: Queryable): Promise<boolean> {
  const { rowCount } = await db.query("SELECT 1 FROM stakesync.developers_write_failing");
  return (rowCount ?? 0) > 0;
}

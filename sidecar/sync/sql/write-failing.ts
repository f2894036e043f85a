/**
 * Whether the queue's developers write is failing as a whole, kept in
 * stakesync.developers_write_failing (migration 015) for every sidecar's /ready: the leader notes
 * the first failure (and the latest error, redacted), and clears it once a write succeeds.
 */
import type { Queryable } from "../../db/queryable";

export async function noteWriteFailing(db: Queryable, error: string) {
  await db.query(
    `INSERT INTO stakesync.developers_write_failing (last_error) VALUES ($1)
     ON CONFLICT (only_row) DO UPDATE SET last_error = $1`,
    [error.slice(0, 1000)],
  );
}

/** Clears it; whether there was anything to clear (a term begins by asking). */
export async function clearWriteFailing(db: Queryable): Promise<boolean> {
  const { rowCount } = await db.query("DELETE FROM stakesync.developers_write_failing");
  return (rowCount ?? 0) > 0;
}

/** Whether it is noted now (a new leader learns whether the last one left it). */
export async function writeFailingNoted(db: Queryable): Promise<boolean> {
  const { rowCount } = await db.query("SELECT 1 FROM stakesync.developers_write_failing");
  return (rowCount ?? 0) > 0;
}

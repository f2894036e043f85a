/**
 * Runs `work` in one transaction on `db`, committed when it returns and rolled back when it
 * throws (a failed rollback on a dead connection is ignored: the error that killed it is thrown).
 * `begin` is the BEGIN statement with its isolation level, followed by any SET LOCAL the
 * transaction needs, sent as one simple query: one round trip, not one per setting.
 */
import type pg from "pg";

export async function inTransaction<T>(db: pg.ClientBase, begin: string, work: () => Promise<T>): Promise<T> {
  try {
    await db.query(begin);
    const result = await work();
    await db.query("COMMIT");
    return result;
  } catch (error) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

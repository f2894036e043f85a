/**
 * Runs `work` in one transaction on `db`, committed when it returns and rolled back when it
 * throws (a failed rollback on a dead connection is ignored: the error that killed it is thrown).
 * `begin` is the BEGIN statement with its isolation level, followed by any SET LOCAL the
 * transaction needs and any statement that opens its work, sent as one simple query: one round
 * trip, not one per statement. `work` gets the rows of each of them, in order.
 */
import type pg from "pg";
import { allRows, type Statements } from "./together";

export async function inTransaction<T>(
  db: pg.ClientBase,
  begin: string | Statements,
  work: (begun: unknown[][]) => Promise<T>,
): Promise<T> {
  try {
    const begun = await allRows(db, typeof begin === "string" ? [begin] : begin);
    const result = await work(begun);
    await db.query("COMMIT");
    return result;
  } catch (error) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/**
 * Runs `work` in one transaction on `db`, committed when it returns and rolled back when it
 * throws (a failed rollback on a dead connection is ignored: the error that killed it is thrown).
 * `begin` is the BEGIN statement with its isolation level, followed by any SET LOCAL the
 * transaction needs and any statement that opens its work, sent as one simple query: one round
 * trip, not one per statement. `work` gets the rows of each of them, in order.
 *
 * `work` may end with its own last statements and COMMIT in one round trip (`COMMIT`), and say
 * so by returning `committed(value)`; `begin` may also hold the whole transaction, COMMIT
 * included, for a `work` that only reads its rows. On a busy machine each round trip is a chance
 * to wait for a core: a realtime round was a dozen of them. A `committed` result without the
 * COMMIT sent would leave the transaction open: only return it right after sending one.
 */
import type pg from "pg";
import { allRows, type Statements } from "./together";

/** The statement that ends `work`'s transaction when `work` sends it with its last ones. */
export const COMMIT: Statements = ["COMMIT"];

/**
 * What `work` returns after it sent `COMMIT` itself: `value`, already committed. Tagged by a
 * registered symbol, not a class: a second copy of this module (a bundle beside the sources)
 * still recognises it.
 */
const COMMITTED = Symbol.for("stakesync.committed");
export type Committed<T> = { readonly [COMMITTED]: true; readonly value: T };
export const committed = <T>(value: T): Committed<T> => ({ [COMMITTED]: true, value });
const isCommitted = <T>(result: T | Committed<T>): result is Committed<T> =>
  typeof result === "object" && result !== null && COMMITTED in result;

export async function inTransaction<T>(
  db: pg.ClientBase,
  begin: string | Statements,
  work: (begun: unknown[][]) => Promise<T | Committed<T>>,
  options: { prepared?: boolean } = {},
): Promise<T> {
  try {
    // `prepared`: the begin's statements as statements prepared on this connection (allRows).
    const begun = await allRows(db, typeof begin === "string" ? [begin] : begin, options);
    const result = await work(begun);
    if (isCommitted(result)) return result.value;
    await db.query("COMMIT");
    return result;
  } catch (error) {
    // Also after a failed statement sent with COMMIT: PostgreSQL skipped the COMMIT, and the
    // transaction waits for this ROLLBACK.
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

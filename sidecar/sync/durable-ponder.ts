/**
 * Ponder's commits made durable (migration 018): a statement trigger on the table behind a
 * schema's stake_event that sets synchronous_commit to `local` for the transaction. Ponder sets it off
 * for its whole pool, and a PostgreSQL crash lost its last blocks while it ran on: the soak's
 * crash found a stake missing from Ponder and from developers for good, and an event the sidecar
 * had applied taken back as a reorg's.
 *
 * Put on when the step first looks up a schema's table (reorg-watch.ts reorgTable), and again
 * whenever that look-up is made anew (a `ponder dev` restart makes the table anew). It costs each
 * of Ponder's commits with events one WAL flush, none without. Creating it takes a lock that
 * waits for Ponder's transaction in flight: at most 1 s, then tried at the next look-up. A role
 * that may not create it (no TRIGGER privilege on Ponder's tables: docs/sql/roles.sql grants
 * it) leaves Ponder's commits as they are, said once in the log.
 */
import type pg from "pg";
import { inline } from "../db/together";
import { inTransaction } from "../db/transaction";

export const DURABLE_TRIGGER = "stakesync_durable_commit";

/** Puts the trigger on the table `oid` unless it has it; the error when it could not, else null. */
export async function makeCommitsDurable(
  db: pg.ClientBase,
  oid: string,
): Promise<{ code?: string; message: string } | null> {
  try {
    await inTransaction(
      db,
      [
        "BEGIN",
        "SET LOCAL lock_timeout = '1s'",
        inline(
          `SELECT $1::oid::regclass::text AS name,
                  EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::oid AND tgname = $2) AS present`,
          [oid, DURABLE_TRIGGER],
        ),
      ],
      async (begun) => {
        const [row] = (begun.at(-1) ?? []) as { name: string; present: boolean }[];
        if (!row || row.present) return;
        await db.query(
          `CREATE TRIGGER ${DURABLE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON ${row.name}
             FOR EACH STATEMENT EXECUTE FUNCTION stakesync.durable_commit()`,
        );
      },
    );
    return null;
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
}

/**
 * Takes the application's developers table (ACCESS SHARE, as any read of it) first thing in a
 * transaction of the sync, before Ponder's tables: the one wait on the application's locks, and
 * bounded by the transaction's lock_timeout (SYNC_LOCK_WAIT_MS). Only DDL conflicts with it: an
 * application's ALTER TABLE, or one queued behind a long application transaction, which every
 * later query of the table queues behind. Taken after Ponder's stake_event, a step waiting here
 * held up Ponder's next reorg or crash recovery (their DROP TRIGGER waits for the step) for as
 * long as the migration; taken first, the step waits holding nothing of Ponder's, and gives up
 * with an error that names the table. Reads nothing; locks developers.
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Statements } from "../../db/together";

/** How long a sync transaction waits for any lock: Ponder's, the application's, stakesync's own. */
export const SYNC_LOCK_WAIT_MS = 2000;

/** The start of the error's text when the wait ran out (its code: 55P03, lock_not_available). */
export const DEVELOPERS_LOCKED = "the developers table stayed locked";

export function lockDevelopers(config: SidecarConfig): Statements {
  // A plain identifier (lib/config.ts parseTableName): nothing in it to quote.
  const table = config.developersTable.sql;
  const message = `${DEVELOPERS_LOCKED} (${table}) for more than ${SYNC_LOCK_WAIT_MS / 1000} s: an application migration, or one waiting for a long transaction`;
  return [
    `DO $$ BEGIN
       LOCK TABLE ${table} IN ACCESS SHARE MODE;
     EXCEPTION WHEN lock_not_available THEN
       RAISE EXCEPTION USING ERRCODE = 'lock_not_available', MESSAGE = '${message}';
     END $$`,
  ];
}

/**
 * Takes the application's developers table first thing in a transaction of the sync, before it
 * reads anything (a plain LOCK takes no snapshot) and before Ponder's tables, in the mode the
 * transaction needs: ACCESS SHARE for the step's reads, ROW EXCLUSIVE for the developers write.
 * Only the application's DDL conflicts with it (an ALTER TABLE, a CREATE INDEX, or one queued
 * behind a long application transaction), and the sync waits for it, as long as it lasts and
 * holding nothing else: the sync is stalled meanwhile (`lag`, StakesyncSyncStalled), and goes on
 * the moment it ends.
 *
 * - Taken after Ponder's stake_event, a step waiting here held up Ponder's next reorg or crash
 *   recovery (their DROP TRIGGER waits for the step) for as long as the migration.
 * - Taken after the step's snapshot, a migration that rewrote the table (ADD COLUMN with a
 *   volatile default, ALTER COLUMN TYPE) and committed meanwhile left the step an empty table:
 *   a rewrite is not MVCC-safe. Nothing was queued, and the rows stayed stale until the next
 *   reconciliation.
 * - Given up on after a time, as the sync's other waits are (SYNC_LOCK_WAIT_MS), each attempt
 *   failed, backed off further, and paged `consecutive_errors` for an ordinary migration.
 *
 * Reads nothing; locks developers.
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Statements } from "../../db/together";

/**
 * How long a sync transaction waits for any other lock (Ponder's, stakesync's own): a Ponder
 * frozen inside its reorg fails the step instead of holding the developers table with it.
 */
export const SYNC_LOCK_WAIT_MS = 2000;

export function lockDevelopers(config: SidecarConfig, mode: "ACCESS SHARE" | "ROW EXCLUSIVE"): Statements {
  return [
    `LOCK TABLE ${config.developersTable.sql} IN ${mode} MODE`,
    `SET LOCAL lock_timeout = '${SYNC_LOCK_WAIT_MS}ms'`,
  ];
}

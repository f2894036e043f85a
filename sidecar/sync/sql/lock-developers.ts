/**
 * Takes the application's developers table (ACCESS SHARE, as its reads do: the sidecar's role
 * has SELECT on it, and UPDATE on its own columns only, too little for a stronger LOCK) first
 * thing in the sync step, before it reads anything (a plain LOCK takes no snapshot) and before
 * Ponder's tables. Only the application's DDL conflicts with it (an ALTER TABLE, or one queued
 * behind a long application transaction), and the step waits for it, as long as it lasts and
 * holding nothing else: the sync is stalled meanwhile (`lag`, StakesyncSyncStalled), and goes on
 * the moment it ends.
 *
 * - Taken after Ponder's stake_event, a step waiting here held up Ponder's next reorg or crash
 *   recovery (their DROP TRIGGER waits for the step) for as long as the migration.
 * - Taken after the step's snapshot, a migration that rewrote the table (ADD COLUMN with a
 *   volatile default, ALTER COLUMN TYPE) and committed meanwhile left the step an empty table:
 *   a rewrite is not MVCC-safe. Nothing was queued, and the rows stayed stale until the next
 *   reconciliation.
 * - Given up on after a time, as the step's other waits are (SYNC_LOCK_WAIT_MS), each attempt
 *   failed, backed off further, and paged `consecutive_errors` for an ordinary migration.
 *
 * The developers write (apply-developers.ts) holds nothing of Ponder's and waits without a bound.
 * Reads nothing; locks developers.
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Statements } from "../../db/together";

/**
 * How long a sync transaction waits for any other lock (Ponder's, stakesync's own): a Ponder
 * frozen inside its reorg fails the step instead of holding the developers table with it.
 */
export const SYNC_LOCK_WAIT_MS = 2000;

/** The lock, then the bound for every later wait of the step. */
export function lockDevelopers(config: SidecarConfig): Statements {
  return [
    `LOCK TABLE ${config.developersTable.sql} IN ACCESS SHARE MODE`,
    `SET LOCAL lock_timeout = '${SYNC_LOCK_WAIT_MS}ms'`,
  ];
}

/**
 * Takes the application's developers table (ACCESS SHARE, as its reads do: the sidecar's role
 * has SELECT on it, and UPDATE on its own columns only, too little for a stronger LOCK) first
 * thing in the sync step, before it reads anything (a plain LOCK takes no snapshot) and before
 * Ponder's tables. Only the application's DDL conflicts with it (an ALTER TABLE, or one queued
 * behind a long application transaction), and the step waits for it, as long as it lasts and
 * holding nothing else: the sync is stalled meanwhile (`lag`, StakesyncSyncStalled), and goes on
 * the moment it ends.
 *
 * It waits in slices of DEVELOPERS_WAIT_SLICE_MS: a slice that runs out fails the step's first
 * round trip (DevelopersBusy), and the loop tries again after a poll, counting no error. A wait
 * in one piece kept the leader's session busy on the server for as long as the migration lasted,
 * also once the process was gone (killed, frozen, its host lost): the server ends a silent
 * leader's session only while it is idle (leader.ts), so no other sidecar could lead, send or
 * page until the migration ended. The slice is the LOCK's statement_timeout (SQLSTATE 57014),
 * not a lock_timeout, whose 55P03 the step's later waits for Ponder's tables raise in the same
 * round trip; and it is the plain LOCK, which takes no snapshot: a function or a DO block that
 * took the lock would run in a snapshot taken before its wait (see the second point below).
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
 * The developers write (apply-developers.ts) holds nothing of Ponder's and waits in slices too;
 * the step goes on beside it (a CREATE INDEX's SHARE lock lets the step's ACCESS SHARE through),
 * so a write that keeps waiting is noted as the write failing (loop.ts): /ready says so once it
 * has lasted, as for a write that fails.
 * Reads nothing; locks developers.
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Queryable } from "../../db/queryable";
import type { Statements } from "../../db/together";

/**
 * How long a sync transaction waits for any other lock (Ponder's, stakesync's own): a Ponder
 * frozen inside its reorg fails the step instead of holding the developers table with it.
 */
export const SYNC_LOCK_WAIT_MS = 2000;

/**
 * One slice of a wait for the application's lock on developers: with the leader's silence limit
 * (LEADER_SILENCE_LIMIT_S), how soon a leader gone in the middle of it lets another lead.
 */
export const DEVELOPERS_WAIT_SLICE_MS = 1000;

/**
 * The lock, bounded by a slice, then the bound for every later wait of the step. The statement
 * timeout goes back to the session's own (TO DEFAULT: the server's, its role's, its connection's).
 */
export function lockDevelopers(config: SidecarConfig): Statements {
  return [
    `SET LOCAL statement_timeout = '${DEVELOPERS_WAIT_SLICE_MS}ms'`,
    `LOCK TABLE ${config.developersTable.sql} IN ACCESS SHARE MODE`,
    "SET LOCAL statement_timeout TO DEFAULT",
    `SET LOCAL lock_timeout = '${SYNC_LOCK_WAIT_MS}ms'`,
  ];
}

/** A step's first round trip ran out a slice of its wait for the developers table (ranOutASlice). */
export class DevelopersBusy extends Error {
  constructor(cause: unknown) {
    super(
      "the developers table is held by another session's lock (an application's migration?): the step waits for it",
      {
        cause,
      },
    );
  }
}

/**
 * The step's first round trip failed with `error`: a slice of the wait for developers, or not. A
 * statement timeout there (57014, or a cancel's) is the LOCK's only if developers is held off
 * now, asked without waiting (NOWAIT fails while another session holds a conflicting lock or
 * waits for one): a role's statement_timeout shorter than the step's wait for Ponder's tables
 * (a Ponder frozen inside its reorg) times out another statement of the round trip, which must
 * count as the error it is, not as a migration waited for. A migration that ended in between
 * counts once as an error, and the next step goes on.
 */
export async function ranOutASlice(db: Queryable, config: SidecarConfig, error: unknown): Promise<boolean> {
  if ((error as { code?: unknown } | null)?.code !== "57014") return false;
  try {
    await db.query(`BEGIN; LOCK TABLE ${config.developersTable.sql} IN ACCESS SHARE MODE NOWAIT; ROLLBACK`);
    return false;
  } catch (probe) {
    await db.query("ROLLBACK").catch(() => undefined);
    return (probe as { code?: unknown }).code === "55P03";
  }
}

export const developersBusy = (error: unknown): error is DevelopersBusy => error instanceof DevelopersBusy;

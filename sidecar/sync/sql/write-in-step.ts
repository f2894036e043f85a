/**
 * A step writes its developers itself, in its own transaction, instead of queueing them for the
 * developers write that follows (apply-developers.ts): the same rows, values, audit rows and
 * welcome jobs (writeDevelopers, fed with the step's entries instead of the queue's), without
 * writing each developer to the queue and deleting it again, and with the cursor in the same
 * commit. In the bench's cached backfill (100,000 events, 10,000 developers) that was a fifth of
 * each bulk step (docs/performance.md); a realtime block's round is one commit instead of two
 * (its statements prepared, as the rest of its last round trip).
 *
 * Only what the write can take as it is: a developer with a queue entry (held by the
 * application before, or a dead letter) is queued as before, where the queue's rules merge the
 * entries. The rows are locked as the developers write locks them (SKIP LOCKED: a row an
 * application transaction holds is queued, for the write after the step). The step's snapshot
 * is REPEATABLE READ: a row the application changed since it began fails the lock with 40001; a
 * refused row (a CHECK, a trigger) fails the write; so do a deadlock, a lock wait past
 * SYNC_LOCK_WAIT_MS, and a statement past its bound (WRITE_IN_BLOCK_MAX_MS up to FEW_DEVELOPERS,
 * else WRITE_IN_STEP_MAX_MS). Any of these (ownWriteFailed) rolls the step back, and it runs again
 * at once without this (step.ts), on the queue's path, which handles each; steps then queue for
 * a while (loop.ts). Any other statement error fails the round, and the next tries queue too
 * (failedWithOwnWrite). So a step commits here what the queue's path would have for these rows,
 * or nothing. Three things differ, all of the snapshot: an application trigger on developers
 * runs in it (one that reads other tables sees them as the step began); a row the application
 * inserted since (another letter case of a stale wallet) is not written with the others but as
 * a registration, by the next step; and a welcome job of a wallet with no email in it is left
 * pending (not `no_email`) for the worker's sweep (skipWithoutEmail), historic reasons decided
 * first as on the queue's path (write-developers.ts).
 *
 * Sent in the step's last round trip, before queueDevelopers and with the COMMIT: the rows it
 * locks are never held across a round trip. Reads `stale`, `affected`, `activation` and
 * developers; writes `claimed`, developers, stakesync.audit and stakesync.outbox, and takes the
 * developers written out of `stale`, so that queueDevelopers queues the rest. Its one result
 * with rows is the changes (`ownChanges`).
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Statements } from "../../db/together";
import { lockWholeWallets } from "./claim-developers";
import { type Change, changesFrom, refusesRow, writeDevelopers } from "./write-developers";

/**
 * The longest each of its statements may take. Past it the step is run again on the queue's
 * path, whose developers write holds nothing of Ponder's: this one holds the step's lock on
 * Ponder's events, which Ponder's reorgs and crash recovery wait for. 10,000 developers take 0.2 s
 * here (docs/performance.md); a write 50 times slower is an application trigger's doing.
 */
export const WRITE_IN_STEP_MAX_MS = 10_000;
/**
 * The same for a write of at most FEW_DEVELOPERS developers (a realtime block's: a millisecond or
 * two): past it, an application trigger of a second (a view refreshed on each update, say) would
 * hold Ponder's reorgs that long at every block. Such a write is run again on the queue's path
 * instead, and steps queue for a while (loop.ts). Told by the developers the write takes, counted
 * by the server, not by the step's events: a block's step may also write thousands, left by an
 * early step or registered in the last minute.
 */
export const WRITE_IN_BLOCK_MAX_MS = 1_000;
const FEW_DEVELOPERS = 1_000;

/** `maxMs`: a test's own bound, for every write; else by the write's size (above). */
export function writeInStep(config: SidecarConfig, maxMs?: number): Statements {
  const dev = config.developersTable.sql;
  const bound =
    maxMs === undefined
      ? `CASE WHEN (SELECT count(*) FROM stale) <= ${FEW_DEVELOPERS} THEN '${WRITE_IN_BLOCK_MAX_MS}' ELSE '${WRITE_IN_STEP_MAX_MS}' END`
      : `'${Math.trunc(maxMs)}'`;
  return [
    // For the rest of the transaction, as SET LOCAL: until the last of these statements resets it.
    `SELECT set_config('statement_timeout', ${bound}, true) AS bound`,
    // A deferred constraint of the application's would refuse a row at COMMIT, which fails the
    // whole step with nothing to fall back on: checked at the write instead (as BEGIN_APPLY does).
    "SET CONSTRAINTS ALL IMMEDIATE",
    // Through the index on lower(wallet_address) (this write is taken only with it, see
    // step.ts): the wallets computed by the server, as findStaleTogether's.
    // Whole wallets (lockWholeWallets): a wallet one of whose rows is held is queued, both rows.
    `WITH ${lockWholeWallets(
      dev,
      `ARRAY(SELECT s.wallet FROM stale s
              WHERE NOT EXISTS (SELECT 1 FROM stakesync.developer_queue q WHERE q.wallet = s.wallet))`,
    )}
     INSERT INTO claimed (wallet, row_id) SELECT wallet, row_id FROM locked WHERE wallet NOT IN (SELECT wallet FROM partly)`,
    ...writeDevelopers(config, null, "step"),
    "DELETE FROM stale s USING claimed c WHERE c.wallet = s.wallet",
    // The operator's own bound, or none, for the rest of the step.
    "SET LOCAL statement_timeout TO DEFAULT",
  ];
}

/**
 * The failures this write meets by running the step again on the queue's path: a row the
 * application changed since the snapshot (40001) or a deadlock with one of its transactions (class
 * 40), a refused row (refusesRow), the bound or a lock wait run out (57014, 55P03). Anything
 * else (the connection lost, a table gone) fails the round as any step's error.
 */
export function ownWriteFailed(error: unknown): boolean {
  const { code } = error as { code?: unknown };
  return typeof code === "string" && (/^40/.test(code) || code === "57014" || code === "55P03" || refusesRow(error));
}

/** Where the write stands among writeInStep's statements: after the bound, the constraints, the claim. */
const WRITE_AT = 3;
/** The changes, from the rows of writeInStep's statements (none: no write). */
export const ownChanges = (rows: unknown[][]): Change[] => changesFrom(rows[WRITE_AT]);

/**
 * The second half: writes queued developers (queue-developers.ts) to the developers table, with
 * one audit row per changed developer and the welcome job of a first activation, in a READ
 * COMMITTED transaction of its own, right after the step that queued them: the BEGIN, the claim
 * of the rows, the write and the COMMIT in one round trip. With the index on the developers'
 * wallets a step writes its developers itself (write-in-step.ts): the queue then holds only
 * those it could not take (a row held, a dead letter, the step's own write failed), and this
 * write finds it empty without a query (the step read it with its COMMIT).
 *
 * The developers table is the application's. Its transactions update other columns of the same
 * rows at any time; in the step's REPEATABLE READ snapshot such a row fails with 40001, and a
 * long application transaction would hold the whole sync. Here the rows are locked first with
 * SKIP LOCKED: a row an application transaction holds stays queued for the next round (100 ms
 * later), the others go on. A row the database refuses (a CHECK, a trigger, an overflow) is set
 * aside as a dead letter for that developer; every other developer is written.
 *
 * Status and staked_at follow the README's rules; amounts are exact numerics. Everything is
 * computed from `stakesync.chain_stake`, which only the leader writes: between the step and this
 * transaction it cannot change.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import { lastRows, type Statements } from "../db/together";
import { COMMIT, committed, inTransaction } from "../db/transaction";
import { errorText } from "../redact";
import { claimDevelopers, heldFrom, pendingWallets, walletsFrom } from "./sql/claim-developers";
import { DEVELOPERS_WAIT_SLICE_MS } from "./sql/lock-developers";
import { APPLY_TABLES } from "./sql/step-tables";
import { type Change, changesFrom, refusesRow, writeDevelopers } from "./sql/write-developers";
import { TOGETHER_MAX_EVENTS } from "./step";

export type { Change };

export type Refusal = { wallet: string; error: string };

export type Applied = {
  changes: Change[];
  /** Developers the database refused this round, now dead letters. */
  refused: Refusal[];
  /** Queued developers whose row an application transaction holds: tried again next round. */
  held: number;
  /**
   * A slice of the write's wait for a lock ran out (DEVELOPERS_WAIT_SLICE_MS; an application's
   * migration holds developers): nothing written, the queue as it was, tried again next round.
   */
  waited?: true;
};

/** A round with nothing queued. */
export const NOTHING: Applied = { changes: [], refused: [], held: 0 };

/** A round whose write waited a slice for a lock, and will again (lockWaitRanOut). */
const WAITED: Applied = { ...NOTHING, waited: true };

/**
 * The server's own lock_timeout ran out in a wait of the write's (ProcessInterrupts raises it):
 * not a trigger's RAISE of the same code, which is the application's error (refusesRow).
 */
const lockWaitRanOut = (error: unknown) => {
  const { code, routine } = (error ?? {}) as { code?: unknown; routine?: unknown };
  return code === "55P03" && routine === "ProcessInterrupts";
};

/**
 * `pending`: the queue's pending wallets when the step just read them (`pendingWallets`, with its
 * last operations); else they are read here.
 */
export function applyDevelopers(
  db: pg.ClientBase,
  config: SidecarConfig,
  pending?: string[],
  options: { walletIndexed?: boolean } = {},
): Promise<Applied> {
  return writeQueued(db, config, pending, options).catch((error: unknown) => {
    if (lockWaitRanOut(error)) return WAITED;
    throw error;
  });
}

async function writeQueued(
  db: pg.ClientBase,
  config: SidecarConfig,
  pending: string[] | undefined,
  { walletIndexed = false }: { walletIndexed?: boolean },
): Promise<Applied> {
  // Shadow mode writes nothing: the queue keeps what a write would do, `stakesync plan` shows it.
  if (config.mode === "shadow") return NOTHING;
  const queued = pending ?? walletsFrom(await lastRows(db, pendingWallets(config)));
  if (queued.length === 0) return NOTHING;
  // Its waits in slices (BEGIN_APPLY): it holds nothing of Ponder's, and its UPDATE waits for
  // whatever migration of the application's holds developers (CREATE INDEX's SHARE lock among
  // them), to go on the moment it ends; a slice run out is no error, and the next round waits
  // again (see lock-developers.ts, which says why a wait in one piece kept every sidecar from leading).
  const begin = [BEGIN_APPLY, ...claimDevelopers(config, queued)];
  try {
    // The claim, the write and the COMMIT in one round trip: a refused row stops the write and
    // the COMMIT, and the ROLLBACK that follows leads to the row-by-row pass below.
    // Counted from the end: BEGIN_APPLY is several statements, each with its own (empty) rows.
    // A realtime round's few developers: its claim and write as statements prepared on this
    // connection (together.ts); a catch-up's thousands are planned for what they are. Only with
    // the index on the developers' wallets (developers-table.ts walletIndexed): a generic plan's
    // wallets are a parameter, walked for every row of a table without it, not hashed.
    const write = [...begin, ...writeDevelopers(config, null), ...COMMIT];
    const prepared = walletIndexed && queued.length <= TOGETHER_MAX_EVENTS;
    return await inTransaction(
      db,
      write,
      async (rows) => {
        const [claim = [], written] = rows.slice(-3, -1);
        return committed({ changes: changesFrom(written), refused: [], held: heldFrom(claim) });
      },
      { prepared },
    );
  } catch (error) {
    // A lock wait run out is no refusal (refusesRow): thrown, and taken as a wait (applyDevelopers).
    if (!refusesRow(error)) throw error;
  }
  return writeRowByRow(db, config, begin);
}

/**
 * Some row was refused: the same again, halving the failing set behind savepoints until the
 * refused developers stand alone (a few passes for a few bad rows among thousands).
 */
function writeRowByRow(db: pg.ClientBase, config: SidecarConfig, begin: Statements): Promise<Applied> {
  return inTransaction(db, begin, async (begun) => {
    const held = heldFrom(begun.at(-1) ?? []);
    // The write of no row first: no row's rule can refuse it, only a statement-level trigger
    // (FOR EACH STATEMENT, which fires for an UPDATE of no row too). Refused, it refuses every
    // row: the round fails (thrown), instead of a dead letter of each claimed developer at 2n
    // writes while their rows stay locked.
    await lastRows(db, writeDevelopers(config, []));
    const { rows: claimed } = await db.query<{ wallets: string[] }>(
      "SELECT coalesce(array_agg(DISTINCT wallet ORDER BY wallet), '{}') AS wallets FROM claimed",
    );
    const wallets = claimed[0]?.wallets ?? [];
    const changes: Change[] = [];
    const refused: Refusal[] = [];
    const attempt = async (part: string[]): Promise<void> => {
      await db.query("SAVEPOINT developers");
      try {
        changes.push(...changesFrom(await lastRows(db, writeDevelopers(config, part))));
        await db.query("RELEASE SAVEPOINT developers");
      } catch (error) {
        if (!refusesRow(error)) throw error;
        await db.query("ROLLBACK TO SAVEPOINT developers");
        await db.query("RELEASE SAVEPOINT developers");
        if (part.length === 1) {
          refused.push({ wallet: part[0] as string, error: errorText(error) });
          return;
        }
        const half = Math.ceil(part.length / 2);
        await attempt(part.slice(0, half));
        await attempt(part.slice(half));
      }
    };
    await attempt(wallets);
    // Every refused row is a dead letter, also when a round's every row is refused. Whether that
    // is a rule for every row (a trigger deployed by mistake) or one for these developers alone
    // (two refused developers staking in one block, dead letters retried together) cannot be
    // told: failing the round for the former held the whole sync for the latter, and each probe
    // of the table tried (another row, the row written last) answered wrongly one way or the
    // other in a review. Dead letters come back by themselves once the rule is fixed: a
    // reconciliation tries them again once retry_at has passed (reconcile-stakes.ts
    // retryRefused), one RECONCILE_INTERVAL_MS after the first refusal, twice as long after each
    // next, at most an hour; all of them once one is written (write-developers.ts).
    await db.query(
      `UPDATE stakesync.developer_queue q
          SET state = 'dead', attempts = q.attempts + 1, last_error = r.error,
              -- The first refusal only: a retry refused again is no new developer refused.
              refused_at = CASE WHEN q.attempts = 0 THEN now() ELSE q.refused_at END,
              retry_at = now() + least(interval '1 hour', make_interval(secs => $3::float8 * 2 ^ least(q.attempts, 20)))
         FROM unnest($1::text[], $2::text[]) AS r(wallet, error)
        WHERE q.wallet = r.wallet`,
      [refused.map((r) => r.wallet), refused.map((r) => r.error), config.reconcileIntervalMs / 1000],
    );
    return { changes, refused, held };
  });
}

/**
 * READ COMMITTED. A deferred constraint of the application's would refuse a row only at COMMIT,
 * past every savepoint: checked at each statement instead, where one developer can be set aside.
 * The temp tables here have no statistics: planned as one row each, the joins on the developers
 * table became nested loops (24 s for 10,000 developers instead of 0.3 s).
 */
const BEGIN_APPLY = `BEGIN ISOLATION LEVEL READ COMMITTED; SET CONSTRAINTS ALL IMMEDIATE;
  SET LOCAL enable_nestloop = off; SET LOCAL lock_timeout = '${DEVELOPERS_WAIT_SLICE_MS}ms'; ${APPLY_TABLES}`;

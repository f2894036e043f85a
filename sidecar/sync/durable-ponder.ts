/**
 * Ponder's commits made durable (migration 018): a statement trigger on the table behind a
 * schema's stake_event that sets synchronous_commit to `local` for the transaction. Ponder sets it off
 * for its whole pool, and a PostgreSQL crash lost its last blocks while it ran on: the soak's
 * crash found a stake missing from Ponder and from developers for good, and an event the sidecar
 * had applied taken back as a reorg's.
 *
 * Put on when the step first looks up a schema's table (reorg-watch.ts reorgTable), on every other
 * instance's (PONDER_REPLICA_SCHEMAS) as the sources are read (keepDurable), and again whenever
 * the relation `schema`.stake_event names changes (a redeploy makes a views schema's views anew,
 * `ponder dev` the table). It costs each of Ponder's commits with events one WAL flush, none
 * without; only on an instance that is ready (a backfill's transactions hold the table for
 * seconds). Creating it takes a lock that waits for Ponder's transaction in flight, and Ponder's
 * next writes queue behind it: at most LOCK_WAIT_MS, then tried again RETRY_AFTER_MS later. A role
 * that may not create it (no TRIGGER privilege on Ponder's tables: docs/sql/roles.sql grants
 * it) leaves Ponder's commits as they are: said once in the log, shown on /status
 * (`ponderNotDurable`) and as `stakesync_ponder_not_durable` while it lasts, and tried again once
 * a minute, so that a grant given later takes effect without a restart.
 */
import type pg from "pg";
import { COMMIT, committed, inTransaction } from "../db/transaction";

export const DURABLE_TRIGGER = "stakesync_durable_commit";

/**
 * Puts the trigger on the table `oid` unless it has it; the error when it could not, else null.
 * The look and the CREATE TRIGGER go in one round trip, COMMIT included: its lock, which
 * Ponder's writes queue behind, is never held while the sidecar's own turn is due (a sidecar
 * frozen between two round trips held it until its session was ended).
 */
export async function makeCommitsDurable(
  db: pg.ClientBase,
  oid: string,
): Promise<{ code?: string; message: string } | null> {
  const table = `${Number(oid)}::oid`;
  try {
    await inTransaction(
      db,
      [
        "BEGIN",
        `SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms'`,
        // The privilege looked at first: CREATE TRIGGER takes the table's lock before it checks,
        // so a role without TRIGGER queued Ponder's writes behind a try bound to fail.
        `DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = ${table} AND tgname = '${DURABLE_TRIGGER}') THEN
             IF NOT has_table_privilege(${table}, 'TRIGGER') THEN
               RAISE EXCEPTION 'permission denied for table %', ${table}::regclass USING ERRCODE = 'insufficient_privilege';
             END IF;
             EXECUTE format('CREATE TRIGGER ${DURABLE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON %s
                               FOR EACH STATEMENT EXECUTE FUNCTION stakesync.durable_commit()', ${table}::regclass);
           END IF;
         END $$`,
        ...COMMIT,
      ],
      async () => committed(undefined),
    );
    return null;
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
}

/** The table behind `schema`.stake_event (itself, or the table a views schema's view reads), and the relation the name stands for. */
export type Behind = {
  table: string;
  rel: string;
  /** The `_ponder_checkpoint` table beside `table` (behind a views schema's view too), quoted. */
  checkpoints: string;
};

/**
 * `schema`.stake_event's table: pg_rewrite and pg_depend for a view (0.25 ms of planning: looked
 * up only when the name stands for another relation), else the table itself. Null: no such relation.
 */
export async function tableBehind(db: pg.ClientBase, schema: string): Promise<Behind | null> {
  const { rows } = await db.query<{ oid: string | null; rel: string | null; nsp: string | null }>(
    `SELECT x.rel, x.oid,
            (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = x.oid::oid) AS nsp
       FROM (SELECT to_regclass($1)::oid::text AS rel, coalesce(
               (SELECT d.refobjid FROM pg_rewrite r
                  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
                  JOIN pg_class c ON c.oid = d.refobjid AND c.relname = 'stake_event'
                 WHERE r.ev_class = to_regclass($1)
                 LIMIT 1),
               to_regclass($1)::oid)::text AS oid) x`,
    [`"${schema}".stake_event`],
  );
  const [row] = rows;
  return row?.oid && row.rel && row.nsp
    ? { table: row.oid, rel: row.rel, checkpoints: `"${row.nsp.replaceAll('"', '""')}"._ponder_checkpoint` }
    : null;
}

/** Per schema: the relation whose table was made durable, and why the role may not (while it may not). */
export type Durability = {
  made: Map<string, string>;
  refused: Map<string, string>;
  /**
   * Per schema, when to try again after a try that could not settle (a lock wait run out, a
   * refusal): on the monotonic clock, which a wall clock stepped back does not put off.
   */
  retryAt: Map<string, number>;
};
export const newDurability = (): Durability => ({ made: new Map(), refused: new Map(), retryAt: new Map() });

/**
 * How long creating the trigger waits for Ponder's transaction in flight, and how long until it is
 * tried again. Ponder's writes that come meanwhile queue behind the waiting CREATE TRIGGER: tried
 * every round with a long wait, a replica's backfill (its transactions last seconds) was held up
 * at every round.
 */
const LOCK_WAIT_MS = 200;
const RETRY_AFTER_MS = 10_000;
/** How long until a try the role's privileges refused is made again. */
export const REFUSED_RETRY_MS = 60_000;

/**
 * Makes `found`'s table durable unless done for that relation. A try that could not (a lock wait
 * run out, a connection lost) is made again RETRY_AFTER_MS later; one the role's privileges
 * refused is kept in `refused` (the log says it once, /status and a metric while it lasts) and
 * made again REFUSED_RETRY_MS later.
 */
export async function settleDurable(
  db: pg.ClientBase,
  durability: Durability,
  schema: string,
  found: Behind,
): Promise<void> {
  if (!due(durability, schema, found.rel)) return;
  const problem = await makeCommitsDurable(db, found.table);
  if (problem) {
    // Refused: tried again once a minute (no lock taken, see makeCommitsDurable), so that a grant
    // the operator gives later takes effect without a restart.
    if (problem.code === INSUFFICIENT_PRIVILEGE) durability.refused.set(schema, problem.message);
    durability.retryAt.set(
      schema,
      performance.now() + (problem.code === INSUFFICIENT_PRIVILEGE ? REFUSED_RETRY_MS : RETRY_AFTER_MS),
    );
    return;
  }
  durability.made.set(schema, found.rel);
  durability.refused.delete(schema);
}

/** Whether `schema`'s relation `rel` is still to be made durable, and may be tried now. */
export const due = (durability: Durability, schema: string, rel: string) =>
  durability.made.get(schema) !== rel && (durability.retryAt.get(schema) ?? 0) <= performance.now();

/** Every instance read (its progress's `rel`), made durable once per relation its name stands for. */
export async function keepDurable(
  db: pg.ClientBase,
  durability: Durability,
  sources: { schema: string; rel: string | null | undefined; ready: boolean }[],
) {
  // Not while an instance backfills: its batches hold the table for seconds, and it is not read
  // meanwhile (nor is a crash's hole in it read: its crash recovery starts from its checkpoint).
  for (const { schema, rel, ready } of sources) {
    // Looked up only when due: a try that could not settle waits RETRY_AFTER_MS, without a look-up
    // at every round meanwhile.
    if (!rel || !ready || !due(durability, schema, rel)) continue;
    const found = await tableBehind(db, schema);
    if (found) await settleDurable(db, durability, schema, found);
  }
}

const INSUFFICIENT_PRIVILEGE = "42501";

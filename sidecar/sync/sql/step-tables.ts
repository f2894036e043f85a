/**
 * The temp tables a step's operations pass to each other, declared once, with their columns. They
 * live as long as the leader's connection; each transaction that uses them empties them first.
 *
 * Emptied at BEGIN, not ON COMMIT DELETE ROWS: that truncates every such table at every commit,
 * a file truncation each, and made a realtime round 19.4 ms instead of 13.1 (median, fast tier)
 * and an idle one 11.3 instead of 7.8. A DELETE leaves dead rows, which later rounds prune
 * page by page; after a catch-up step they fill thousands of pages that every scan would read,
 * so tables grown past EMPTY_BY_TRUNCATE are truncated instead. A transaction that rolled back
 * loses the tables it created; the next one creates them again (IF NOT EXISTS; the notices that
 * it skips are silenced).
 *
 * Which of the two, the client decides (stepTables): a plpgsql block that measured the tables
 * and chose took the server 0.5 ms of every round (quiet ones too: 0.8 ms on a busy machine, the
 * costliest statement of a realtime round), mostly to size every fork of every table and its
 * TOAST. Now the step's BEGIN deletes the rows where the last step on this connection left the
 * tables small, and reads their size; anything else (a catch-up, a failed step, a new connection,
 * a size past the bound) has the next BEGIN truncate them.
 *
 * Who writes and reads each: sync_window (diff-events → record-events, advance-cursor),
 * sync_delta (diff-events → record-events, add-chain-stake, mark-affected), affected
 * (mark-affected, find-registrations, reconcile-stakes → queue-developers), stale and activation
 * (queue-developers, find-activations), claimed (claim-developers or write-in-step →
 * write-developers).
 */

/** Bytes of the tables' own pages (dead rows included) past which the next step truncates them. */
const EMPTY_BY_TRUNCATE = 1024 * 1024;

/** The tables' columns, by name. */
type Tables = Record<string, string>;

/** Creates the tables this connection lacks, the notices of those it has silenced. */
const create = (tables: Tables) => [
  "SET LOCAL client_min_messages = warning",
  ...Object.keys(tables).map((t) => `CREATE TEMP TABLE IF NOT EXISTS ${t} (${tables[t]})`),
];

/** Creates the tables if this connection lacks them and empties them, the size decided by the server: sent with a BEGIN. */
function prepare(tables: Tables): string {
  const names = Object.keys(tables);
  const size = names.map((t) => `pg_total_relation_size('pg_temp.${t}')`).join(" + ");
  return `
  ${create(tables).join(";\n  ")};
  DO $$ BEGIN
    IF ${size} > ${EMPTY_BY_TRUNCATE} THEN TRUNCATE ${names.join(", ")};
    ELSE ${names.map((t) => `DELETE FROM ${t};`).join(" ")}
    END IF;
  END $$;`;
}

/** The developers rows a write locked (claim-developers.ts, write-in-step.ts). */
const CLAIMED = "wallet text, row_id tid";

const STEP: Tables = {
  sync_window: "chain_id integer, cursor bigint, lower bigint, target bigint, diff_to bigint, final_block bigint",
  sync_delta: `change text, chain_id integer, event_key text, wallet text, delta numeric, block_number bigint,
    block_timestamp bigint, transaction_hash text, log_index integer, late boolean, events bigint`,
  affected: `wallet text PRIMARY KEY, chain_id integer, block_number bigint, transaction_hash text,
    block_timestamp bigint, reason text NOT NULL`,
  stale: "wallet text, activating boolean, raw numeric",
  activation: "wallet text, block_timestamp bigint, chain_id integer, block_number bigint, found boolean",
  claimed: CLAIMED,
};
const STEP_NAMES = Object.keys(STEP);

/** Connections whose last step left the step tables small: the next step deletes their rows. */
const leftSmall = new WeakSet<object>();

/**
 * Sent with the step's BEGIN on `db`: the tables created if this connection lacks them, and
 * emptied, by a DELETE where the last step on `db` left them small (tablesLeftSmall), else by a
 * TRUNCATE. The last statement's row is their size, for tablesLeftSmall.
 */
export function stepTables(db: object): string[] {
  const empty = leftSmall.delete(db)
    ? STEP_NAMES.map((t) => `DELETE FROM ${t}`)
    : [`TRUNCATE ${STEP_NAMES.join(", ")}`];
  const size = STEP_NAMES.map((t) => `pg_relation_size('pg_temp.${t}')`).join(" + ");
  return [...create(STEP), ...empty, `SELECT ${size} AS bytes`];
}

/**
 * After a step that committed on `db` and added few rows to the step tables (a realtime block's,
 * or a round between blocks): `rows`, those of stepTables' last statement, say whether the next
 * step may delete their rows. A step that added many (an application's registrations, a step
 * after a catch-up) leaves them past the bound, seen by the next step, and the one after truncates.
 */
export function tablesLeftSmall(db: object, rows: unknown[] | undefined) {
  const bytes = Number((rows as { bytes?: string }[] | undefined)?.[0]?.bytes ?? Number.NaN);
  if (bytes <= EMPTY_BY_TRUNCATE) leftSmall.add(db);
}

/** Sent with the developers write's BEGIN. */
export const APPLY_TABLES = prepare({ claimed: CLAIMED });

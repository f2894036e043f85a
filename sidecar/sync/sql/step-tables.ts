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
 * Who writes and reads each: sync_window (diff-events → record-events, advance-cursor),
 * sync_delta (diff-events → record-events, add-chain-stake, mark-affected), affected
 * (mark-affected, find-registrations, reconcile-stakes → queue-developers), stale and activation
 * (queue-developers, find-activations), claimed (claim-developers or write-in-step →
 * write-developers).
 */

/** Bytes (tables and indexes together) past which the tables are truncated rather than deleted. */
const EMPTY_BY_TRUNCATE = 1024 * 1024;

/** Creates the tables if this connection lacks them and empties them: sent with a BEGIN. */
function prepare(tables: Record<string, string>): string {
  const names = Object.keys(tables);
  const size = names.map((t) => `pg_total_relation_size('pg_temp.${t}')`).join(" + ");
  return `
  SET LOCAL client_min_messages = warning;
  ${names.map((t) => `CREATE TEMP TABLE IF NOT EXISTS ${t} (${tables[t]});`).join("\n  ")}
  DO $$ BEGIN
    IF ${size} > ${EMPTY_BY_TRUNCATE} THEN TRUNCATE ${names.join(", ")};
    ELSE ${names.map((t) => `DELETE FROM ${t};`).join(" ")}
    END IF;
  END $$;`;
}

/** The developers rows a write locked (claim-developers.ts, write-in-step.ts). */
const CLAIMED = "wallet text, row_id tid";

/** Sent with the step's BEGIN: one round trip. */
export const STEP_TABLES = prepare({
  sync_window: "chain_id integer, cursor bigint, lower bigint, target bigint, diff_to bigint, final_block bigint",
  sync_delta: `change text, chain_id integer, event_key text, wallet text, delta numeric, block_number bigint,
    block_timestamp bigint, transaction_hash text, log_index integer, late boolean, events bigint`,
  affected: `wallet text PRIMARY KEY, chain_id integer, block_number bigint, transaction_hash text,
    block_timestamp bigint, reason text NOT NULL`,
  stale: "wallet text, activating boolean, raw numeric",
  activation: "wallet text, block_timestamp bigint, chain_id integer, block_number bigint, found boolean",
  claimed: CLAIMED,
});

/** Sent with the developers write's BEGIN. */
export const APPLY_TABLES = prepare({ claimed: CLAIMED });

/**
 * The difference between what Ponder has confirmed in each window and what was applied.
 * Reads Ponder's stake_event and stakesync.applied_event; writes the temp tables `sync_window`
 * (one row per window) and `sync_delta` (the changes: 'added' or 'removed', signed amounts).
 *
 * Events at or below the cursor were applied before: diffed one by one, `added` ones were brought
 * by a reorg (`late`) and `removed` ones were orphaned by it. Events above the cursor are new:
 * those above the new final block are kept one by one (they may still be orphaned); the final
 * ones only as a sum per wallet, with the wallet's latest event (a catch-up has thousands):
 * Ponder's event ids sort in the order the events happened.
 */
import type pg from "pg";
import { inline, lastRows, type Statements } from "../../db/together";
import type { Window } from "../windows";
import { eventKey, signedAmount } from "./fragments";

export type EventCounts = { added: number; removed: number };

/**
 * The two sides a window compares, stated once for the diff and for ledgerMatches: Ponder's events
 * and the applied ones in (lower, diff_to]. Every applied event is at or below the cursor, so the
 * bound leaves none out but while Ponder is behind the cursor: then those above its checkpoint are
 * not compared with rows it has not indexed again yet. `w` is the alias of a row with chain_id,
 * lower and diff_to. LATERAL: while Ponder backfills its table has no index, and a join on the
 * window would sort all of it on every step.
 */
const ponderEventsIn = (schema: string, w: string) => `CROSS JOIN LATERAL (
          SELECT * FROM "${schema}".stake_event e
           WHERE e.chain_id = ${w}.chain_id AND e.block_number > ${w}.lower AND e.block_number <= ${w}.diff_to
          OFFSET 0) e`;
const appliedIn = (w: string) =>
  `JOIN stakesync.applied_event a
     ON a.chain_id = ${w}.chain_id AND a.block_number > ${w}.lower AND a.block_number <= ${w}.diff_to`;

/** Returns, per chain with any change, how many events were added and removed. */
export async function diffEvents(
  db: pg.ClientBase,
  ponderSchema: string,
  windows: Window[],
): Promise<Map<number, EventCounts>> {
  // One round trip: the statements and the counts, the last of their results.
  return countsFrom(await lastRows(db, [...diffStatements(ponderSchema, windows), ...deltaCountsStatements]));
}

/** The diff's statements, for sending with others; `deltaCountsStatements` after them reads its counts. */
export function diffStatements(ponderSchema: string, windows: Window[]): Statements {
  const col = <K extends keyof Window>(key: K) => windows.map((w) => w[key]);
  const statements = [
    // The windows go in as literals: with the diff and its counts, one round trip.
    inline(
      `INSERT INTO sync_window (chain_id, cursor, lower, target, diff_to, final_block)
         SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
           AS w(chain_id, cursor, lower, target, diff_to, final_block)`,
      [col("chainId"), col("cursor"), col("lower"), col("target"), col("diffTo"), col("finalBlock")],
    ),
    `INSERT INTO sync_delta (change, chain_id, event_key, wallet, delta, block_number, block_timestamp,
                             transaction_hash, log_index, late, events)
     WITH event AS (
       SELECT e.chain_id, e.id, e.transaction_hash, e.developer AS wallet, e.block_number, e.block_timestamp,
              e.log_index, ${signedAmount("e")} AS delta,
              e.block_number <= w.cursor AS late, e.block_number > w.final_block AS tracked,
              e.block_number <= w.target AS confirmed
         FROM sync_window w ${ponderEventsIn(ponderSchema, "w")}
     ),
     desired AS (
       SELECT chain_id, ${eventKey("event")} AS event_key, wallet, delta, block_number, block_timestamp,
              transaction_hash, log_index, late, confirmed
         FROM event WHERE late OR tracked
     ),
     applied AS (
       SELECT a.* FROM sync_window w ${appliedIn("w")}
     )
     SELECT 'added' AS change, d.chain_id, d.event_key, d.wallet, d.delta, d.block_number,
            d.block_timestamp, d.transaction_hash, d.log_index, d.late, 1 AS events
       FROM desired d
      -- Added up to the target only: behind the cursor, rows are compared up to Ponder's checkpoint,
      -- and those above its confirmed block are the new fork's, not confirmed yet.
      WHERE d.confirmed
        AND NOT EXISTS (SELECT 1 FROM applied a WHERE a.chain_id = d.chain_id AND a.event_key = d.event_key)
     UNION ALL
     SELECT 'removed', a.chain_id, a.event_key, a.wallet, -a.delta, a.block_number, NULL, NULL, NULL, true, 1
       FROM applied a
      WHERE NOT EXISTS (SELECT 1 FROM desired d WHERE d.chain_id = a.chain_id AND d.event_key = a.event_key)
     UNION ALL
     SELECT 'added', f.chain_id, NULL, f.wallet, f.delta, e.block_number, f.block_timestamp, e.transaction_hash,
            e.log_index, false, f.events
       FROM (SELECT chain_id, wallet, sum(delta) AS delta, count(*) AS events, max(block_timestamp) AS block_timestamp,
                    max(id COLLATE "C") AS last
               FROM event WHERE NOT (late OR tracked) GROUP BY chain_id, wallet) f
       JOIN event e ON e.id = f.last`,
  ];
  if (windows.some((w) => w.target < w.cursor)) {
    // Behind the cursor, applied events above Ponder's checkpoint are not compared yet: a wallet
    // with one gets nothing added on that chain, or a transaction the new fork mined again lower
    // (another event id) would count twice until the old one is seen missing.
    statements.push(
      `DELETE FROM sync_delta d USING sync_window w
        WHERE d.change = 'added' AND d.chain_id = w.chain_id AND w.target < w.cursor
          AND d.wallet IN (SELECT a.wallet FROM stakesync.applied_event a
                            WHERE a.chain_id = w.chain_id AND a.block_number > w.diff_to)`,
    );
  }
  return statements;
}

type CountRow = { chain_id: number; added: string | null; removed: string };

/** Per chain with any change in `sync_delta`, how many events it adds and removes (`countsFrom`). */
export const deltaCountsStatements: Statements = [
  `SELECT chain_id, sum(events) FILTER (WHERE change = 'added') AS added,
         count(*) FILTER (WHERE change = 'removed') AS removed
    FROM sync_delta GROUP BY chain_id`,
];

/** The counts from the rows of `deltaCountsStatements`. */
export const countsFrom = (rows: unknown[]) =>
  new Map((rows as CountRow[]).map((r) => [r.chain_id, { added: Number(r.added ?? 0), removed: Number(r.removed) }]));

/** Per chain with any change in `sync_delta`, how many events it adds and removes. */
export async function deltaCounts(db: pg.ClientBase): Promise<Map<number, EventCounts>> {
  return countsFrom(await lastRows(db, deltaCountsStatements));
}

/** The keys of the applied events each chain's diff found missing from Ponder (from `sync_delta`). */
export async function removedKeys(db: pg.ClientBase): Promise<Map<number, string[]>> {
  const { rows } = await db.query<{ chain_id: number; keys: string[] }>(
    "SELECT chain_id, array_agg(event_key) AS keys FROM sync_delta WHERE change = 'removed' GROUP BY chain_id",
  );
  return new Map(rows.map((r) => [r.chain_id, r.keys]));
}

/**
 * Leaves out of this step, from `sync_delta`, the removals seen missing for the first time and,
 * on their chains, every addition: the new fork's events are not added while an orphan of the old
 * one still counts, so that no developer shows a sum of both forks.
 */
export async function holdRemovals(db: pg.ClientBase, held: { chainId: number; keys: string[] }[]) {
  for (const { chainId, keys } of held) {
    await db.query(
      `DELETE FROM sync_delta
        WHERE chain_id = $1 AND (change = 'added' OR (change = 'removed' AND event_key = ANY($2::text[])))`,
      [chainId, keys],
    );
  }
}

/** Leaves chains out of this step (their removals must wait): from `sync_delta` and `sync_window`. */
export async function leaveOutChains(db: pg.ClientBase, chainIds: number[]) {
  await db.query("DELETE FROM sync_delta WHERE chain_id = ANY($1::int[])", [chainIds]);
  await db.query("DELETE FROM sync_window WHERE chain_id = ANY($1::int[])", [chainIds]);
}

/**
 * Whether the ledger still matches Ponder in windows with nothing new (`nothingNew`): there, every
 * Ponder event is at or below the cursor and every applied one above the final block, so the diff
 * above is empty exactly when the two sets of keys are equal up to the target (behind the cursor,
 * Ponder's events above it are not taken, and so not asked about). Asked as one
 * yes/no between blocks (one row, `yes`), where it is nearly always yes, instead of the whole
 * diff and the step after it.
 */
export function ledgerMatches(ponderSchema: string, windows: Window[]): Statements {
  return [
    inline(
      `WITH w AS (SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[])
                    AS w(chain_id, lower, diff_to, target))
       SELECT NOT EXISTS (
         SELECT 1
           FROM (SELECT e.chain_id, ${eventKey("e")} AS event_key, e.block_number <= w.target AS confirmed
                   FROM w ${ponderEventsIn(ponderSchema, "w")}) p
           FULL JOIN (SELECT a.chain_id, a.event_key FROM w ${appliedIn("w")}) a USING (chain_id, event_key)
          WHERE p.event_key IS NULL OR (a.event_key IS NULL AND p.confirmed)) AS yes`,
      [
        windows.map((w) => w.chainId),
        windows.map((w) => w.lower),
        windows.map((w) => w.diffTo),
        windows.map((w) => w.target),
      ],
    ),
  ];
}

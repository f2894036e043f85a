/**
 * The first half of bringing developers rows to their confirmed stake: which developers, and why.
 * The second half writes them: the step itself (write-in-step.ts), and apply-developers.ts those
 * queued here.
 * Reads `affected`, stakesync.chain_stake, developers; writes stakesync.developer_queue and the
 * temp tables `stale` and `activation` (find-activations.ts).
 */
import type pg from "pg";
import type { SidecarConfig } from "../../../lib/config";
import { type Computed, computed, inline, lastRows, type Statements } from "../../db/together";
import type { Confirmed } from "../windows";
import { findActivations, findActivationsTogether } from "./find-activations";
import { activationHolds, activationSettings, confirmedStake, differsFromStake, tokenFactor } from "./fragments";

/**
 * Finds, among `affected`, every developer (with a row) whose row differs from their confirmed
 * stake (the temp table `stale`) and, for a first activation, the block time of the stake that
 * crossed the threshold (`activation`); `queueDevelopers` then queues them. Runs in the step's
 * REPEATABLE READ transaction, so that block time is read from the same snapshot of Ponder as the
 * stake; the developers table itself is only read here (the step's own write, write-in-step.ts,
 * locks and writes it; see apply-developers.ts for why the queue's write is a transaction apart).
 * `confirmed` is each chain's synced block. `before`: statements without parameters (the step's
 * operations before this one), sent in the same round trip as this one's first.
 */
export async function findStaleDevelopers(
  db: pg.ClientBase,
  config: SidecarConfig,
  confirmed: Map<number, Confirmed>,
  before: Statements = [],
): Promise<void> {
  const [affected] = await lastRows<{ wallets: string[] }>(db, [
    ...before,
    ...HASH_JOINS,
    "SELECT coalesce(array_agg(wallet), '{}') AS wallets FROM affected",
  ]);
  const wallets = affected?.wallets ?? [];
  if (wallets.length === 0) return;
  const threshold = config.activationThreshold.toString();
  const { rows: stale } = await db.query<{ wallet: string; activating: boolean }>(
    staleQuery(config),
    staleValues(config, wallets),
  );
  const activating = stale.filter((s) => s.activating).map((s) => s.wallet);
  await findActivations(db, config.ponderSchema, threshold, confirmed, activating);
}

/**
 * The same look-ups as findStaleDevelopers, as statements for the step's last round trip: the
 * wallets are computed by the server from `affected`, not passed through the client. For a step
 * whose every chain Ponder has finished backfilling (its indexes are there, see
 * find-activations.ts): a realtime block's round takes three round trips fewer. The developers
 * rows are fetched through the index on lower(wallet_address): only with it (a computed array
 * is not hashed, and without the index it would be walked once per row, see HASH_JOINS).
 */
export function findStaleTogether(config: SidecarConfig, confirmed: Map<number, Confirmed>): Statements {
  const threshold = config.activationThreshold.toString();
  return [
    ...HASH_JOINS,
    inline(staleQuery(config), staleValues(config, computed("ARRAY(SELECT wallet FROM affected)"))),
    ...findActivationsTogether(config.ponderSchema, threshold, confirmed),
  ];
}

/**
 * A nested loop on lower(wallet_address) computed lower() for every pair: with stale statistics
 * on developers (a new temp table has none either) the planner picked one, and a step took 17 s
 * at 10,000 developers. Hash joins only, here; and the developers rows are fetched through the
 * index on lower(wallet_address) for the affected wallets, not by hashing the whole application
 * table every round (20 ms of an 87 ms realtime round at 50,000 developers). The wallets go as a
 * bound array, which PostgreSQL hashes: without the index (a DBA may not have created it), an
 * array computed in the query is walked once per row, 6.6 s for 10,000 wallets in 50,000 rows.
 * Off until the step's transaction ends (advance-cursor.ts, after this, joins nothing).
 */
const HASH_JOINS: Statements = ["SET LOCAL enable_nestloop = off"];

/** $1 the token factor, $2 the threshold, $3 the wallets. */
function staleValues(config: SidecarConfig, wallets: string[] | Computed) {
  return [tokenFactor(config.stakeDecimals), config.activationThreshold.toString(), wallets];
}

function staleQuery(config: SidecarConfig) {
  const dev = config.developersTable.sql;
  // Activating: a first activation whose crossing stake is still to be found; one an early step
  // found is in `activation` already (unwritten-developers.ts).
  // raw: the confirmed stake, kept for the step's own write in the same snapshot (write-developers.ts).
  return `INSERT INTO stale (wallet, activating, raw)
     SELECT t.wallet, bool_or(d.staked_at IS NULL) AND t.raw >= $2::numeric
              AND NOT EXISTS (SELECT 1 FROM activation x WHERE x.wallet = t.wallet) AS activating, t.raw
       -- OFFSET 0: the sum once per wallet; flattened, it ran at each of raw's uses.
       FROM (SELECT a.wallet, ${confirmedStake("a.wallet", config.chains)} AS raw FROM affected a OFFSET 0) t
       JOIN ${dev} d ON lower(d.wallet_address) = t.wallet
      WHERE lower(d.wallet_address) = ANY ($3::text[]) AND cardinality($3::text[]) > 0
      GROUP BY t.wallet, t.raw -- one entry per wallet, also when two rows differ only in letter case
     HAVING bool_or(${differsFromStake("d", "t.raw", "$1", "$2")})
     RETURNING wallet, activating`;
}

/** The columns of a queue entry that a step fills: the developers write reads them (write-developers.ts). */
export const ENTRY_COLUMNS = `wallet, reason, chain_id, block_number, transaction_hash, block_timestamp, activated_at,
  activated_chain, activated_block`;

/**
 * The entries this step owes, one per developer of `stale`: with the event that caused it
 * (`affected`) and a first activation's crossing stake (`activation`), in ENTRY_COLUMNS. What the
 * queue takes (queueDevelopers), or what the step writes at once
 * (write-in-step.ts).
 * A first activation whose crossing stake Ponder does not show (its rows above the cursor are
 * gone while it recovers or lags) waits: written now, staked_at would stay empty for good. The
 * next reconciliation, or the developer's next event, queues it again.
 */
export const STEP_ENTRIES = `SELECT s.wallet, a.reason, a.chain_id, a.block_number, a.transaction_hash, a.block_timestamp,
            CASE WHEN x.found THEN x.block_timestamp END AS activated_at,
            CASE WHEN x.found THEN x.chain_id END AS activated_chain,
            CASE WHEN x.found THEN x.block_number END AS activated_block
       FROM stale s JOIN affected a ON a.wallet = s.wallet LEFT JOIN activation x ON x.wallet = s.wallet
      WHERE NOT s.activating OR x.found`;

/**
 * Whether a queued developer keeps the first activation found ($1 the settings): not after a reorg
 * of its events (the crossing stake may be gone: the look-up of this snapshot, or none, below the
 * threshold now or staked_at set meanwhile), nor when it was found under other settings (migration
 * 014; one queued before it included).
 */
const KEEPS_ACTIVATION = `(excluded.reason <> 'reorg' AND developer_queue.activated_at IS NOT NULL
  AND ${activationHolds("developer_queue", "$1")})`;

/**
 * Queues in `stakesync.developer_queue` the developers of `stale`, with the event that caused it
 * (`affected`) and a first activation's block time (`activation`), with the settings it was found
 * under. Sent with the step's last operations.
 * A developer already queued (an application transaction held the row, or the database refused
 * it) keeps the weightiest reason and the first activation time: a later look-up may miss the
 * crossing stake (one chain's rows gone while its Ponder recovers) and find a later one on
 * another chain. Unless a reorg changed its events, or the settings that decide it changed
 * (KEEPS_ACTIVATION). New events give a refused row another try; a reconciliation gives one to a few whose
 * wait has passed (reconcile-stakes.ts retryRefused), not every dead row it finds differing.
 * A developer whose row the chain no longer changes (a reorg took the stake back, an unstake
 * undid it, the application wrote the row itself) leaves the queue, with the activation its entry
 * held: a refused one is no dead letter any more (the alert goes once none is left); a pending one
 * (held by the application) kept a crossing stake that a reorg may have taken back, for a later
 * stake to be written with (before, staked_at from an orphaned block). So does a pending entry
 * without a first activation's time whose developer now turns active and whose crossing stake this
 * step cannot see (Ponder recovering): written, staked_at would stay empty for good; the next
 * reconciliation, or the developer's next event, queues it again.
 */
export const queueDevelopers = (config: SidecarConfig): Statements => [
  // Joins, not subqueries in the condition: the temp tables have no index, and a subquery there
  // would scan one per queued developer (10,000 dead letters in a bulk step: 10^8 rows).
  `DELETE FROM stakesync.developer_queue q
    USING affected a LEFT JOIN stale s ON s.wallet = a.wallet LEFT JOIN activation x ON x.wallet = a.wallet AND x.found
    WHERE q.wallet = a.wallet
      AND (s.wallet IS NULL OR (q.state = 'pending' AND q.activated_at IS NULL AND s.activating AND x.wallet IS NULL))`,
  inline(
    `INSERT INTO stakesync.developer_queue (${ENTRY_COLUMNS}, activated_for)
     SELECT ${ENTRY_COLUMNS}, CASE WHEN activated_at IS NOT NULL THEN $1 END FROM (${STEP_ENTRIES}) e
     ON CONFLICT (wallet) DO UPDATE
        SET reason = CASE WHEN 'reorg' IN (developer_queue.reason, excluded.reason) THEN 'reorg'
                          WHEN 'stake' IN (developer_queue.reason, excluded.reason) THEN 'stake'
                          ELSE 'reconcile' END,
            chain_id = COALESCE(excluded.chain_id, developer_queue.chain_id),
            block_number = COALESCE(excluded.block_number, developer_queue.block_number),
            transaction_hash = COALESCE(excluded.transaction_hash, developer_queue.transaction_hash),
            block_timestamp = COALESCE(excluded.block_timestamp, developer_queue.block_timestamp),
            activated_at = CASE WHEN ${KEEPS_ACTIVATION} THEN developer_queue.activated_at ELSE excluded.activated_at END,
            activated_chain = CASE WHEN ${KEEPS_ACTIVATION} THEN developer_queue.activated_chain ELSE excluded.activated_chain END,
            activated_block = CASE WHEN ${KEEPS_ACTIVATION} THEN developer_queue.activated_block ELSE excluded.activated_block END,
            activated_for = CASE WHEN ${KEEPS_ACTIVATION} THEN developer_queue.activated_for ELSE excluded.activated_for END,
            state = CASE WHEN excluded.reason = 'reconcile' THEN developer_queue.state ELSE 'pending' END`,
    [activationSettings(config)],
  ),
];

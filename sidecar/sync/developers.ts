/**
 * Applies confirmed stake to the developers table for the wallets in the session's temp table
 * `affected`, writes one audit row per changed developer and queues the welcome email of a
 * developer's first activation, all in the caller's transaction.
 * Status and staked_at follow SPEC.md "Behaviour" 2–4; amounts are exact numerics.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";

export type Change = {
  wallet: string;
  old_status: string | null;
  new_status: string;
  old_amount: string | null;
  new_amount: string;
  reason: string;
  block_timestamp: string | null;
};

/** Creates the empty `affected` table: one row per wallet to re-evaluate, with what caused it. */
export async function createAffected(db: pg.ClientBase) {
  await db.query(`
    CREATE TEMP TABLE affected (
      wallet text PRIMARY KEY,
      chain_id integer,
      block_number bigint,
      transaction_hash text,
      block_timestamp bigint,
      reason text NOT NULL
    ) ON COMMIT DROP`);
}

/**
 * `confirmed` is each chain's synced block: a newly active developer's staked_at is read from
 * their confirmed events up to it (the block time of the stake that crossed the threshold).
 */
export async function applyToDevelopers(
  db: pg.ClientBase,
  config: SidecarConfig,
  confirmed: Map<number, number>,
): Promise<Change[]> {
  const dev = config.developersTable.sql;
  const factor = config.stakeDecimals === 0 ? "1" : `0.${"0".repeat(config.stakeDecimals - 1)}1`;
  // The join on lower(wallet_address) has no index to use, so a nested loop computes lower()
  // for every pair: with stale statistics on developers (a new temp table has none either) the
  // planner picked one, and a step took 17 s at 10,000 developers. Hash joins only, here.
  await db.query("SET LOCAL enable_nestloop = off");
  const threshold = config.activationThreshold.toString();
  const totals = `SELECT a.wallet, COALESCE(sum(cs.amount), 0) AS raw
                    FROM affected a LEFT JOIN stakesync.chain_stake cs ON cs.wallet = a.wallet
                   GROUP BY a.wallet`;
  const { rows: first } = await db.query<{ wallets: string[] }>(
    `SELECT coalesce(array_agg(t.wallet), '{}') AS wallets
       FROM (${totals}) t JOIN ${dev} d ON lower(d.wallet_address) = t.wallet
      WHERE t.raw >= $1::numeric AND d.staked_at IS NULL`,
    [threshold],
  );
  await findActivations(db, config.ponderSchema, threshold, confirmed, first[0]?.wallets ?? []);
  const { rows } = await db.query<Change>(
    `WITH totals AS (${totals}),
     old AS (
       SELECT d.ctid AS row_id, t.wallet, d.status, d.stake_amount, d.staked_at, t.raw
         FROM ${dev} d JOIN totals t ON lower(d.wallet_address) = t.wallet
     ),
     next AS (
       SELECT o.*, o.raw * $1::numeric AS new_amount,
              CASE WHEN o.raw >= $2::numeric THEN 'active'
                   WHEN o.status = 'pending' THEN 'pending'
                   ELSE 'inactive' END AS new_status
         FROM old o
     ),
     changed AS (
       UPDATE ${dev} d
          SET status = n.new_status,
              stake_amount = n.new_amount,
              staked_at = COALESCE(d.staked_at, CASE WHEN n.new_status = 'active' AND x.found THEN to_timestamp(x.block_timestamp) END),
              updated_at = now()
         FROM next n LEFT JOIN activation x ON x.wallet = n.wallet
        WHERE d.ctid = n.row_id
          AND (n.status IS DISTINCT FROM n.new_status OR n.stake_amount IS DISTINCT FROM n.new_amount)
       RETURNING n.wallet, n.status AS old_status, d.status AS new_status,
                 n.stake_amount AS old_amount, d.stake_amount AS new_amount, d.email
     ),
     -- Without an email there is nothing to send: the job is recorded skipped at once.
     welcome AS (
       INSERT INTO stakesync.outbox (kind, wallet, state, done_at)
       SELECT 'welcome_email', wallet, CASE WHEN no_email THEN 'skipped' ELSE 'pending' END,
              CASE WHEN no_email THEN now() END
         FROM (SELECT wallet, coalesce(email, '') = '' AS no_email FROM changed
                WHERE new_status = 'active' AND old_status IS DISTINCT FROM 'active') c
       ON CONFLICT (kind, wallet) DO NOTHING
     )
     INSERT INTO stakesync.audit
            (wallet, old_status, new_status, old_amount, new_amount, chain_id, block_number, transaction_hash, reason)
     SELECT c.wallet, c.old_status, c.new_status, c.old_amount, c.new_amount,
            a.chain_id, a.block_number, a.transaction_hash,
            CASE WHEN a.reason = 'reconcile' AND c.old_status = 'pending' THEN 'registered' ELSE a.reason END
       FROM changed c JOIN affected a ON a.wallet = c.wallet
     RETURNING wallet, old_status, new_status, old_amount::text, new_amount::text, reason,
               (SELECT a.block_timestamp::text FROM affected a WHERE a.wallet = audit.wallet) AS block_timestamp`,
    [factor, threshold],
  );
  await db.query("SET LOCAL enable_nestloop TO DEFAULT");
  return rows;
}

/**
 * Fills the temp table `activation`: for each developer activated for the first time, the block
 * time of the event that first took their confirmed stake, summed over chains, to the threshold.
 * Ponder's event id sorts events in the order they happened (block time, chain, block, position),
 * and a developer's first event is nearly always a stake that reaches the threshold on its own:
 * one pass finds it. Only the others are replayed event by event. The wallets are passed as a
 * list, not joined: while Ponder backfills its tables have no indexes and no statistics, and a
 * join there can make the planner scan every event once per developer.
 */
async function findActivations(
  db: pg.ClientBase,
  ponderSchema: string,
  threshold: string,
  confirmed: Map<number, number>,
  wallets: string[],
) {
  const events = `SELECT e.* FROM "${ponderSchema}".stake_event e
                    JOIN unnest($1::int[], $2::bigint[]) AS c(chain_id, block)
                      ON c.chain_id = e.chain_id AND e.block_number <= c.block
                   WHERE e.developer = ANY($3::text[]) AND cardinality($3::text[]) > 0`;
  const scope = [[...confirmed.keys()], [...confirmed.values()]];
  // Every id has the same length: what is appended to it never decides the minimum.
  await db.query(
    `CREATE TEMP TABLE activation ON COMMIT DROP AS
     SELECT wallet, split_part(first, ':', 2)::bigint AS block_timestamp, split_part(first, ':', 3) = 'alone' AS found
       FROM (SELECT e.developer AS wallet,
                    min(e.id COLLATE "C" || ':' || e.block_timestamp || ':' ||
                        CASE WHEN e.kind = 'staked' AND e.amount >= $4::numeric THEN 'alone' ELSE '' END) AS first
               FROM (${events}) e GROUP BY e.developer) f`,
    [...scope, wallets, threshold],
  );
  const { rows } = await db.query<{ wallets: string[] }>(
    "SELECT coalesce(array_agg(wallet), '{}') AS wallets FROM activation WHERE NOT found",
  );
  const replay = rows[0]?.wallets ?? [];
  if (replay.length === 0) return;
  await db.query(
    `UPDATE activation a SET block_timestamp = x.block_timestamp, found = true
       FROM (SELECT DISTINCT ON (wallet) wallet, block_timestamp
               FROM (SELECT e.developer AS wallet, e.id, e.block_timestamp,
                            sum(CASE e.kind WHEN 'staked' THEN e.amount ELSE -e.amount END)
                              OVER (PARTITION BY e.developer ORDER BY e.id COLLATE "C") AS running
                       FROM (${events}) e) s
              WHERE running >= $4::numeric
              ORDER BY wallet, id COLLATE "C") x
      WHERE a.wallet = x.wallet`,
    [...scope, replay, threshold],
  );
}

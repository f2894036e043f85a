/**
 * What the next sync would change in the developers table, row by row, and why: read-only.
 * `stakesync plan` prints it; in shadow mode (SIDECAR_MODE=shadow) /status, the status page and
 * `stakesync_developers_differing` count it. It compares each row with the confirmed stake the
 * sidecar holds in `stakesync.chain_stake` (at its cursor), with the same rules the write uses
 * (`stakesync.next_status`, exact amounts), so it lists exactly what a write-mode step would do.
 */
import type { SidecarConfig } from "../../lib/config";
import type { Queryable } from "../db/queryable";
import { chainIn, differsFromStake, signedAmount, tokenFactor } from "./sql/fragments";

export type PlannedChange = {
  wallet: string;
  status: { now: string | null; next: string };
  stakeAmount: { now: string | null; next: string };
  /** Set by this change (a first activation): the block time of the stake that crossed the threshold. */
  stakedAt: string | null;
  why: string;
  /** A welcome email this change would send, or why not; null when it activates no one. */
  /**
   * Not sent because a job exists already: `already_sent`, or one that is waiting
   * (`already_queued`), dead-lettered (`dead_letter`) or was skipped (`skipped_before`).
   */
  welcome:
    | "send"
    | "no_email"
    | "historic"
    | "already_sent"
    | "already_queued"
    | "dead_letter"
    | "skipped_before"
    | null;
};

/** The rows that differ from their confirmed stake, with their totals: the base of both reads. */
const differing = (config: SidecarConfig) => `
  SELECT lower(d.wallet_address) AS wallet, d.status, d.stake_amount, d.staked_at, d.email,
         COALESCE(cs.raw, 0) AS raw, COALESCE(cs.raw, 0) * $1::numeric AS next_amount,
         stakesync.next_status(d.status, COALESCE(cs.raw, 0) >= $2::numeric) AS next_status
    FROM ${config.developersTable.sql} d
    LEFT JOIN (SELECT wallet, sum(amount) AS raw FROM stakesync.chain_stake
                WHERE ${chainIn("chain_id", config.chains)} GROUP BY wallet) cs
           ON cs.wallet = lower(d.wallet_address)
   WHERE ${differsFromStake("d", "COALESCE(cs.raw, 0)", "$1", "$2")}`;

const params = (config: SidecarConfig) => [tokenFactor(config.stakeDecimals), config.activationThreshold.toString()];

/** How many developers rows the next sync would change. */
export async function countDiffering(db: Queryable, config: SidecarConfig): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM (${differing(config)}) x`, params(config));
  return Number(rows[0]?.n ?? 0);
}

/**
 * Every change, with a reason a person can act on. The reasons name what the previous writer of
 * the table typically got wrong (the original listener: stakes overwritten, not summed; unstakes
 * and slashes ignored; events applied before they were confirmed, so a reorg left them; stakes
 * before signup dropped), checked in that order against Ponder's events (the first that fits is given).
 */
export async function planDevelopers(db: Queryable, config: SidecarConfig): Promise<PlannedChange[]> {
  const ponder = `"${config.ponderSchema}".stake_event`;
  const effectsFrom = config.chains.filter((c) => c.effectsFromBlock !== undefined);
  const { rows } = await db.query<{
    wallet: string;
    status: string | null;
    next_status: string;
    stake_amount: string | null;
    next_amount: string;
    staked_at: string | null;
    why: string;
    welcome: PlannedChange["welcome"];
  }>(
    `WITH diff AS (${differing(config)}),
     -- The chains in CHAINS only, as the write searches them: a chain taken out keeps its cursor.
     confirmed AS (
       SELECT e.* FROM ${ponder} e JOIN stakesync.cursor c ON c.chain_id = e.chain_id AND e.block_number <= c.block
        WHERE e.developer IN (SELECT wallet FROM diff) AND e.chain_id = ANY ($5::int[])
     ),
     facts AS (
       SELECT d.wallet,
              (SELECT amount FROM confirmed e WHERE e.developer = d.wallet AND e.kind = 'staked'
                ORDER BY e.id COLLATE "C" DESC LIMIT 1) * $1::numeric AS last_stake,
              EXISTS (SELECT 1 FROM confirmed e WHERE e.developer = d.wallet AND e.kind <> 'staked') AS reduced,
              EXISTS (SELECT 1 FROM ${ponder} e JOIN stakesync.cursor c ON c.chain_id = e.chain_id
                       WHERE e.developer = d.wallet AND e.block_number > c.block) AS unconfirmed
         FROM diff d
     ),
     -- The event whose running total first reached the threshold: its block decides 'historic'
     -- and its time is staked_at, as the write computes them.
     crossing AS (
       SELECT DISTINCT ON (developer) developer AS wallet, chain_id, block_number, block_timestamp
         FROM (SELECT e.*, sum(${signedAmount("e")})
                             OVER (PARTITION BY e.developer ORDER BY e.id COLLATE "C") AS running
                 FROM confirmed e) s
        WHERE running >= $2::numeric
        ORDER BY developer, id COLLATE "C"
     )
     -- trim_scale: the same values, as a person writes them (15, not 15.000000 or 5.0000000000000000).
     SELECT d.wallet, d.status, d.next_status, trim_scale(d.stake_amount)::text AS stake_amount,
            trim_scale(d.next_amount)::text AS next_amount,
            CASE WHEN d.staked_at IS NULL AND d.next_status = 'active' AND x.block_timestamp IS NOT NULL
                 THEN to_char(to_timestamp(x.block_timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END
              AS staked_at,
            CASE WHEN EXISTS (SELECT 1 FROM stakesync.developer_queue q WHERE q.wallet = d.wallet AND q.state = 'dead')
                   THEN 'refused by the database: a dead letter (GET /admin/dead-letters)'
                 WHEN f.unconfirmed AND NOT f.reduced AND d.stake_amount > d.next_amount
                   THEN 'stake not confirmed yet (within CONFIRMATIONS): the previous writer applied it early'
                 WHEN f.reduced AND d.stake_amount > d.next_amount
                   THEN 'unstake or slash not applied'
                 WHEN f.last_stake IS NOT NULL AND d.stake_amount = f.last_stake AND d.stake_amount <> d.next_amount
                   THEN 'stake summed where the old listener overwrote'
                 WHEN d.stake_amount > d.next_amount
                   THEN 'stake orphaned by a reorg'
                 WHEN d.status = 'pending' AND d.next_status = 'active'
                   THEN 'stake before signup'
                 WHEN d.stake_amount < d.next_amount
                   THEN 'stake not applied'
                 ELSE 'status does not follow the stake (MIN_STAKE)' END AS why,
            CASE WHEN d.next_status <> 'active' OR d.status = 'active' THEN NULL
                 -- A job exists: said as it stands (a dead or skipped one was never delivered).
                 WHEN EXISTS (SELECT 1 FROM stakesync.outbox o WHERE o.kind = 'welcome_email' AND o.wallet = d.wallet)
                   THEN (SELECT CASE o.state WHEN 'sent' THEN 'already_sent' WHEN 'pending' THEN 'already_queued'
                                             WHEN 'dead' THEN 'dead_letter' ELSE 'skipped_before' END
                           FROM stakesync.outbox o WHERE o.kind = 'welcome_email' AND o.wallet = d.wallet LIMIT 1)
                 WHEN x.block_number < f2.from_block THEN 'historic'
                 -- Activated before by another system, on any row of the wallet; then without an
                 -- email on every row: as the write decides them, in that order (write-developers.ts).
                 WHEN EXISTS (SELECT 1 FROM ${config.developersTable.sql} r
                               WHERE lower(r.wallet_address) = d.wallet AND r.staked_at IS NOT NULL
                                 AND (cardinality($3::int[]) > 0 OR r.status IN ('inactive', 'active')))
                   THEN 'historic'
                 WHEN NOT EXISTS (SELECT 1 FROM ${config.developersTable.sql} r
                                   WHERE lower(r.wallet_address) = d.wallet AND coalesce(r.email, '') <> '')
                   THEN 'no_email'
                 ELSE 'send' END AS welcome
       FROM diff d JOIN facts f ON f.wallet = d.wallet
       LEFT JOIN crossing x ON x.wallet = d.wallet
       LEFT JOIN unnest($3::int[], $4::bigint[]) AS f2(chain_id, from_block) ON f2.chain_id = x.chain_id
      ORDER BY d.wallet`,
    [
      ...params(config),
      effectsFrom.map((c) => c.id),
      effectsFrom.map((c) => c.effectsFromBlock),
      config.chains.map((c) => c.id),
    ],
  );
  return rows.map((r) => ({
    wallet: r.wallet,
    status: { now: r.status, next: r.next_status },
    stakeAmount: { now: r.stake_amount, next: r.next_amount },
    stakedAt: r.staked_at,
    why: r.why,
    welcome: r.welcome,
  }));
}

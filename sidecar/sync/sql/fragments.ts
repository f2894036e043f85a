/**
 * SQL fragments that must read the same wherever they appear: if two copies drifted, amounts or
 * reorg detection would break without an error. Each takes the alias of a Ponder `stake_event`
 * row (or a checkpoint column).
 */

/** An event's signed amount: a stake adds, an unstake or a slash subtracts. */
export const signedAmount = (e: string) => `CASE ${e}.kind WHEN 'staked' THEN ${e}.amount ELSE -${e}.amount END`;

/**
 * The ledger's key of an event (`stakesync.applied_event.event_key`). Ponder's id alone can come
 * back for a different event across a reorg (same block number and position, another block);
 * with the transaction hash it cannot.
 */
export const eventKey = (e: string) => `${e}.id || ':' || ${e}.transaction_hash`;

/** The block number inside one of Ponder's 75-digit checkpoints: characters 27–42. */
export const checkpointBlock = (column: string) => `substring(${column} from 27 for 16)::bigint`;

/**
 * A wallet's confirmed stake in raw units, summed over the configured chains
 * (`stakesync.chain_stake`), for `wallet`, an SQL expression. A subquery per wallet, through
 * chain_stake's primary key: joined, the planner hashed the whole table (the step's temp tables
 * have no statistics, and its hash-only joins forbid the alternative), so every realtime round
 * read every wallet ever staked. A chain removed from CHAINS no longer counts, as in `stakesync
 * verify` (stakeOf() summed over the chains): summed, its stake stayed in stake_amount for good,
 * withdrawals never applied.
 */
export const confirmedStake = (wallet: string, chains: { id: number }[]) =>
  `(SELECT COALESCE(sum(cs.amount), 0) FROM stakesync.chain_stake cs
     WHERE cs.wallet = ${wallet} AND ${chainIn("cs.chain_id", chains)})`;

/** `column` is one of the configured chains' ids (integers from the configuration). */
export const chainIn = (column: string, chains: { id: number }[]) =>
  `${column} IN (${chains.map((c) => Math.trunc(c.id)).join(", ")})`;

/**
 * Whether developers row `d` differs from what a confirmed stake of `raw` (raw units, summed over
 * chains) makes it: its stake_amount (`factor`, the token factor) or its status (`threshold`, raw
 * units). Each argument is SQL: an alias's column, a parameter or a literal.
 */
export const differsFromStake = (d: string, raw: string, factor: string, threshold: string) =>
  `(${d}.stake_amount IS DISTINCT FROM ${raw} * ${factor}::numeric
    OR ${d}.status IS DISTINCT FROM stakesync.next_status(${d}.status, ${raw} >= ${threshold}::numeric))`;

/**
 * The settings that decide which stake first took a developer to the threshold: the threshold in
 * raw units (MIN_STAKE and STAKE_DECIMALS) and the chains summed, in order of id. A first
 * activation kept for a later write (unwritten-developers.ts, queue-developers.ts) notes them: one
 * found under other settings (a deploy meanwhile) is searched again.
 */
export const activationSettings = (config: { activationThreshold: bigint; chains: { id: number }[] }) =>
  `${config.activationThreshold}@${config.chains
    .map((c) => c.id)
    .sort((a, b) => a - b)
    .join(",")}`;

/**
 * Whether the first activation kept in row `kept` (unwritten_developer, developer_queue), if it
 * holds one, was found under `settings` (SQL: a parameter or a literal of activationSettings). One
 * kept before migrations 013 and 014 (activated_for NULL) was not: its settings are unknown.
 */
export const activationHolds = (kept: string, settings: string) =>
  `(${kept}.activated_at IS NULL OR ${kept}.activated_for = ${settings})`;

/** 10^−decimals as an exact numeric literal: raw units × factor = token units. */
export function tokenFactor(decimals: number) {
  return decimals === 0 ? "1" : `0.${"0".repeat(decimals - 1)}1`;
}

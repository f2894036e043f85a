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

/** 10^−decimals as an exact numeric literal: raw units × factor = token units. */
export function tokenFactor(decimals: number) {
  return decimals === 0 ? "1" : `0.${"0".repeat(decimals - 1)}1`;
}

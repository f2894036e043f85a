import type { SidecarConfig } from "../../../lib/config";
import type { Statements } from "../../db/together";

/**
 * Signing up after staking is the common flow: a developers row the application inserted in the
 * last minute, still pending, whose wallet has confirmed stake, is queued at the next step (reason
 * `registered` in the audit), not left for the next reconciliation. The window is a minute, not
 * "since the last step": an application transaction's rows carry its start time and may commit
 * seconds later. Cheap through the partial index on pending rows' updated_at (developers-table.ts).
 * Reads developers and stakesync.chain_stake.
 */
const registered = (config: SidecarConfig) => `
       FROM ${config.developersTable.sql} d
       JOIN stakesync.chain_stake cs ON cs.wallet = lower(d.wallet_address) AND cs.amount > 0
      WHERE d.status = 'pending' AND d.updated_at > now() - interval '1 minute'`;

/** Adds those developers to `affected`. */
export const findRegistrations = (config: SidecarConfig): Statements => [
  `INSERT INTO affected (wallet, reason)
   SELECT DISTINCT lower(d.wallet_address), 'reconcile' ${registered(config)}
   ON CONFLICT (wallet) DO NOTHING`,
];

/** Whether there are any (one row, `yes`): a question of a round with nothing new from Ponder. */
export const anyRegistrations = (config: SidecarConfig): Statements => [
  `SELECT EXISTS (SELECT 1 ${registered(config)}) AS yes`,
];

import type { SidecarConfig } from "../../../lib/config";
import { inline, type Statements } from "../../db/together";
import { confirmedStake, differsFromStake, tokenFactor } from "./fragments";

/**
 * Signing up after staking is the common flow: a developers row the application inserted in the
 * last minute, still pending, whose wallet has confirmed stake, is written by the next step (reason
 * `registered` in the audit), not left for the next reconciliation. The window is a minute, not
 * "since the last step": an application transaction's rows carry its start time and may commit
 * seconds later. Cheap through the partial index on pending rows' updated_at (developers-table.ts).
 *
 * Only rows that differ from their confirmed stake: the sidecar's own writes set updated_at too,
 * and a developer it just wrote below the threshold (pending, with stake) looked registered for a
 * minute. Every round then re-evaluated every such developer, and a round between blocks ran the
 * whole step instead of its two questions (the bench's realtime stakes are all such).
 * Reads developers and stakesync.chain_stake.
 */
const registered = (config: SidecarConfig) =>
  inline(
    `
       FROM ${config.developersTable.sql} d
       -- OFFSET 0: once per row; flattened, the subquery ran at each of raw's four uses. The
       -- wallet too: computed in the stake's look-up, lower() ran once per chain_stake row its scan
       -- passed, and a scan it is while chain_stake is small (a few hundred wallets) in a generic
       -- plan: 15 ms a round at 337 rows registered in the last minute (fast tier), 3 ms now.
       CROSS JOIN LATERAL (SELECT lower(d.wallet_address) AS wallet OFFSET 0) w
       CROSS JOIN LATERAL (SELECT ${confirmedStake("w.wallet", config.chains)} AS raw OFFSET 0) s
      WHERE d.status = 'pending' AND d.updated_at > now() - interval '1 minute'
        AND s.raw > 0 AND ${differsFromStake("d", "s.raw", "$1", "$2")}`,
    [tokenFactor(config.stakeDecimals), config.activationThreshold.toString()],
  );

/**
 * Adds those developers to `affected`, but for those the step has there already: their stake is
 * not summed for nothing. After a signup of thousands in a minute (the bench's every run) a catch-up
 * step summed 10,000 stakes here, 35–45 ms, to add none.
 */
export const findRegistrations = (config: SidecarConfig): Statements => [
  `INSERT INTO affected (wallet, reason)
   SELECT DISTINCT w.wallet, 'reconcile' ${registered(config)}
      AND NOT EXISTS (SELECT 1 FROM affected a WHERE a.wallet = w.wallet)
   ON CONFLICT (wallet) DO NOTHING`,
];

/** Whether there are any (one row, `yes`): a question of a round with nothing new from Ponder. */
export const anyRegistrations = (config: SidecarConfig): Statements => [
  `SELECT EXISTS (SELECT 1 ${registered(config)}) AS yes`,
];

/**
 * The developers a step leaves unwritten, `stakesync.unwritten_developer`: a catch-up step taken
 * early while Ponder backfills (windows.ts, `early`) folds its events into chain_stake and leaves
 * the developers they affect (`affected`) for the next step that writes, which adds them to its
 * own. The step that ends the backfill writes nearly every developer again anyway: the early
 * step's writes were the larger part of its cost, taken from Ponder's backfill (docs/performance.md).
 */
import type { SidecarConfig } from "../../../lib/config";
import { inline, type Statements } from "../../db/together";
import { activationHolds, activationSettings } from "./fragments";

const COLUMNS = "wallet, chain_id, block_number, transaction_hash, block_timestamp, reason";

const LATEST_CURSOR_MOVE = "(SELECT coalesce(max(c.updated_at), '-infinity') FROM stakesync.cursor c)";

/**
 * Whether unwritten_developer row `u` still waits: no cursor moved after the step that left it
 * (its cursors and the row share that commit's time, LEFT_AT). A step of this version that moves
 * a cursor takes every row, or leaves them again with its own time; so a cursor moved since, the
 * row still here, was moved by a sidecar that knows nothing of this table (see migration 012).
 */
export const stillWaits = (u: string) => `(${u}.left_at >= ${LATEST_CURSOR_MOVE})`;

/**
 * The time a row is left at: this commit's, which its cursors take (advance-cursor.ts), or a later
 * cursor's if the server's clock went back since (a step of the server's time, a failover to a
 * server whose clock is behind): else a chain this step did not move would keep a later time, and
 * every row would look passed over.
 */
const LEFT_AT = `greatest(now(), ${LATEST_CURSOR_MOVE})`;

/**
 * Leaves the step's `affected` developers unwritten, with the activations it found (`activation`,
 * findStaleDevelopers): a wallet left by an earlier step takes this step's event (the later one)
 * and keeps 'reorg' if either had it; its activation is this step's, or the earlier one's unless
 * this step's events changed by a reorg. An update and an insert, not an upsert: that probed each
 * row twice (30 ms for 10,000 wallets, against 14).
 */
export const leaveUnwritten = (config: SidecarConfig): Statements => [
  `DELETE FROM stakesync.unwritten_developer u WHERE NOT ${stillWaits("u")}`,
  // Before this step moves its cursors: the rows still waiting are carried on with this commit.
  `UPDATE stakesync.unwritten_developer SET left_at = ${LEFT_AT}`,
  inline(
    `UPDATE stakesync.unwritten_developer u
      SET chain_id = a.chain_id, block_number = a.block_number, transaction_hash = a.transaction_hash,
          block_timestamp = a.block_timestamp,
          reason = CASE WHEN 'reorg' IN (u.reason, a.reason) THEN 'reorg' ELSE 'stake' END,
          activated_at = CASE WHEN x.found THEN x.block_timestamp WHEN a.reason = 'reorg' THEN NULL ELSE u.activated_at END,
          activated_chain = CASE WHEN x.found THEN x.chain_id WHEN a.reason = 'reorg' THEN NULL ELSE u.activated_chain END,
          activated_block = CASE WHEN x.found THEN x.block_number WHEN a.reason = 'reorg' THEN NULL ELSE u.activated_block END,
          activated_for = CASE WHEN x.found THEN $1 WHEN a.reason = 'reorg' THEN NULL ELSE u.activated_for END
     FROM affected a LEFT JOIN activation x ON x.wallet = a.wallet
    WHERE a.wallet = u.wallet`,
    [activationSettings(config)],
  ),
  inline(
    `INSERT INTO stakesync.unwritten_developer
            (${COLUMNS}, activated_at, activated_chain, activated_block, activated_for, left_at)
     SELECT a.wallet, a.chain_id, a.block_number, a.transaction_hash, a.block_timestamp, a.reason,
            CASE WHEN x.found THEN x.block_timestamp END, CASE WHEN x.found THEN x.chain_id END,
            CASE WHEN x.found THEN x.block_number END, CASE WHEN x.found THEN $1 END, ${LEFT_AT}
       FROM affected a LEFT JOIN activation x ON x.wallet = a.wallet
      WHERE NOT EXISTS (SELECT 1 FROM stakesync.unwritten_developer u WHERE u.wallet = a.wallet)`,
    [activationSettings(config)],
  ),
];

/**
 * Adds the unwritten developers to the step's `affected` (after markAffected, whose own event for
 * a wallet is the later one; 'reorg' if either had it) and their activations to `activation`
 * (but where this step's events changed by a reorg, or the activation was found under other
 * settings: searched again), and takes them out:
 * committed with the step that queues or writes them. Nearly every one is in the step's own
 * `affected` already (the bench's: 9,400 of 10,000): an update of the few and an insert of the
 * rest, not an upsert.
 */
export const takeUnwritten = (config: SidecarConfig): Statements => [
  inline(
    `INSERT INTO activation (wallet, block_timestamp, chain_id, block_number, found)
     SELECT u.wallet, u.activated_at, u.activated_chain, u.activated_block, true
       FROM stakesync.unwritten_developer u LEFT JOIN affected a ON a.wallet = u.wallet
      WHERE u.activated_at IS NOT NULL AND ${activationHolds("u", "$1")} AND a.reason IS DISTINCT FROM 'reorg'
        AND ${stillWaits("u")}`,
    [activationSettings(config)],
  ),
  `UPDATE affected a SET reason = 'reorg' FROM stakesync.unwritten_developer u
    WHERE u.wallet = a.wallet AND u.reason = 'reorg' AND a.reason <> 'reorg' AND ${stillWaits("u")}`,
  `INSERT INTO affected (${COLUMNS})
   SELECT ${COLUMNS} FROM stakesync.unwritten_developer u
    WHERE NOT EXISTS (SELECT 1 FROM affected a WHERE a.wallet = u.wallet) AND ${stillWaits("u")}`,
  "DELETE FROM stakesync.unwritten_developer",
];

/** Whether any developer waits unwritten (one row, `yes`): a question of a round with nothing new. */
export const anyUnwritten: Statements = [
  `SELECT EXISTS (SELECT 1 FROM stakesync.unwritten_developer u WHERE ${stillWaits("u")}) AS yes`,
];

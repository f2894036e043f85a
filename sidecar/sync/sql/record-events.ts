/**
 * Keeps the ledger of applied events, `stakesync.applied_event`, to what the step applied: the
 * removed ones leave, those at or below each window's new final block are folded away (a final
 * event cannot be orphaned), the added ones above it are kept one by one, to be diffed by later
 * steps. Reads `sync_delta` and `sync_window`.
 */
import type { Statements } from "../../db/together";

export const recordEvents: Statements = [
  `DELETE FROM stakesync.applied_event a USING sync_delta d
    WHERE d.change = 'removed' AND a.chain_id = d.chain_id AND a.event_key = d.event_key`,
  `DELETE FROM stakesync.applied_event a USING sync_window w
    WHERE a.chain_id = w.chain_id AND a.block_number <= w.final_block`,
  `INSERT INTO stakesync.applied_event (chain_id, event_key, wallet, delta, block_number)
   SELECT d.chain_id, d.event_key, d.wallet, d.delta, d.block_number
     FROM sync_delta d JOIN sync_window w ON w.chain_id = d.chain_id
    WHERE d.change = 'added' AND d.block_number > w.final_block`,
];

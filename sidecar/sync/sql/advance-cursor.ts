/**
 * Moves each stepped chain's cursor to its window's target and final block; a window below the
 * cursor (Ponder behind it) leaves it where it is. Reads `sync_window`. Without parameters: sent
 * with the step's last operations.
 */
import type { Statements } from "../../db/together";

export const advanceCursor: Statements = [
  `INSERT INTO stakesync.cursor (chain_id, block, final_block)
   SELECT chain_id, greatest(target, cursor), final_block FROM sync_window
   ON CONFLICT (chain_id) DO UPDATE
      SET block = excluded.block, final_block = excluded.final_block, updated_at = now()`,
];

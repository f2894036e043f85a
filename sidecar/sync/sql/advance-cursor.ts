/**
 * Moves each stepped chain's cursor to its window's target and final block; a window below the
 * cursor (Ponder behind it) leaves it where it is. Reads `sync_window`.
 */
import type pg from "pg";

export async function advanceCursor(db: pg.ClientBase) {
  await db.query(
    `INSERT INTO stakesync.cursor (chain_id, block, final_block)
     SELECT chain_id, greatest(target, cursor), final_block FROM sync_window
     ON CONFLICT (chain_id) DO UPDATE
        SET block = excluded.block, final_block = excluded.final_block, updated_at = now()`,
  );
}

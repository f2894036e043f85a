/**
 * Adds the step's changes to each (wallet, chain)'s confirmed stake, `stakesync.chain_stake`:
 * the sum the developers rows are computed from. Reads `sync_delta`.
 */
import type { Statements } from "../../db/together";

export const addChainStake: Statements = [
  `INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block)
   SELECT wallet, chain_id, sum(delta), max(block_number) FROM sync_delta GROUP BY wallet, chain_id
   ON CONFLICT (wallet, chain_id) DO UPDATE
      SET amount = chain_stake.amount + excluded.amount,
          last_block = GREATEST(chain_stake.last_block, excluded.last_block),
          updated_at = now()`,
];

/**
 * Fills the temp table `affected`, the developers a step re-evaluates with what caused it
 * (queue-developers.ts reads it), from the step's changes (`sync_delta`): one row per
 * wallet, the latest added event naming the block and transaction; reason `reorg` when an
 * already-applied block changed, else `stake`. reconcile-stakes.ts and find-registrations.ts add
 * to it.
 */
import type { Statements } from "../../db/together";

export const markAffected: Statements = [
  `INSERT INTO affected (wallet, chain_id, block_number, transaction_hash, block_timestamp, reason)
   SELECT DISTINCT ON (wallet) wallet, chain_id, block_number, transaction_hash,
          max(block_timestamp) OVER (PARTITION BY wallet),
          CASE WHEN bool_or(late) OVER (PARTITION BY wallet) THEN 'reorg' ELSE 'stake' END
     FROM sync_delta
    ORDER BY wallet, change = 'added' DESC, block_number DESC, log_index DESC NULLS LAST`,
];

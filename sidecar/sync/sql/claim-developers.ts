import type pg from "pg";
import type { SidecarConfig } from "../../../lib/config";

/**
 * Locks the developers rows of the `queued` wallets into the temp table `claimed` (wallet, row),
 * skipping rows another transaction holds; drops queued wallets that have no row (nothing to
 * write: the stake waits in chain_stake until the row appears). Returns how many wallets wait.
 * The wallets are looked up through the index on lower(wallet_address): a row held for minutes
 * is tried again every poll, and that must not scan the application's table every time.
 * Reads developers; writes the temp table `claimed` and stakesync.developer_queue.
 */
export async function claimDevelopers(db: pg.ClientBase, config: SidecarConfig, queued: string[]): Promise<number> {
  const dev = config.developersTable.sql;
  // One statement, one round trip: the claim's RETURNING tells which wallets wait.
  const { rows } = await db.query<{ held: string }>(
    `WITH claiming AS (
       INSERT INTO claimed (wallet, row_id)
       SELECT lower(d.wallet_address) AS wallet, d.ctid AS row_id FROM ${dev} d
        WHERE lower(d.wallet_address) = ANY($1::text[])
          FOR UPDATE SKIP LOCKED
       RETURNING wallet
     ),
     present AS (SELECT lower(d.wallet_address) AS wallet FROM ${dev} d WHERE lower(d.wallet_address) = ANY($1::text[])),
     gone AS (
       DELETE FROM stakesync.developer_queue q
        WHERE q.wallet = ANY($1::text[]) AND q.state = 'pending' AND q.wallet NOT IN (SELECT wallet FROM present)
          -- One snapshot for the whole statement: a row whose wallet_address an application
          -- transaction changed to this wallet just before the lock is claimed, but not present.
          AND q.wallet NOT IN (SELECT wallet FROM claiming)
     )
     SELECT count(DISTINCT p.wallet) AS held FROM present p WHERE p.wallet NOT IN (SELECT wallet FROM claiming)`,
    [queued],
  );
  return Number(rows[0]?.held ?? 0);
}

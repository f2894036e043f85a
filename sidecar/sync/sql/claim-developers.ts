import type { SidecarConfig } from "../../../lib/config";
import { inline, type Statements } from "../../db/together";
import { activationHolds, activationSettings } from "./fragments";
import { stillWaits } from "./unwritten-developers";

/**
 * The wallets waiting in stakesync.developer_queue, as one array (`wallets`): read in the step's
 * last round trip (in its snapshot: a dead letter an admin retried meanwhile waits for the next
 * round), or on its own when the step did not read it. Not those an early step left unwritten
 * since they were queued: their stake moved on, and their entry's event and activation with it
 * only once the step that takes them queues them again (unwritten-developers.ts); written now,
 * a first activation would lose its staked_at. Nor those whose first activation was found under
 * other settings (a deploy since): they wait for a step that finds it again under these, which
 * queues them again, or drops the entry if the row no longer differs (queue-developers.ts).
 */
export const pendingWallets = (config: SidecarConfig): Statements => [
  inline(
    `SELECT coalesce(array_agg(q.wallet), '{}') AS wallets FROM stakesync.developer_queue q
      WHERE q.state = 'pending' AND ${activationHolds("q", "$1")}
        AND NOT EXISTS (SELECT 1 FROM stakesync.unwritten_developer u WHERE u.wallet = q.wallet AND ${stillWaits("u")})`,
    [activationSettings(config)],
  ),
];

/** The wallets from the rows of `pendingWallets`. */
export const walletsFrom = (rows: unknown[]) => (rows as { wallets: string[] }[])[0]?.wallets ?? [];

/**
 * Locks the developers rows of the `queued` wallets into the temp table `claimed` (wallet, row),
 * skipping rows another transaction holds; drops queued wallets that have no row (nothing to
 * write: the stake waits in chain_stake until the row appears). Its one row says how many
 * wallets wait (`heldFrom`). Sent with the BEGIN of the developers write: the wallets go in as a
 * literal array, which PostgreSQL hashes as it did the bound one.
 * The wallets are looked up through the index on lower(wallet_address): a row held for minutes
 * is tried again every poll, and that must not scan the application's table every time.
 * Reads developers; writes the temp table `claimed` and stakesync.developer_queue.
 */
export function claimDevelopers(config: SidecarConfig, queued: string[]): Statements {
  const dev = config.developersTable.sql;
  // One statement: the claim's RETURNING tells which wallets wait.
  return [
    inline(
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
    ),
  ];
}

/** How many wallets wait, from the rows of `claimDevelopers`. */
export const heldFrom = (rows: unknown[]) => Number((rows as { held: string }[])[0]?.held ?? 0);

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
 * Two CTEs, `locked` and `partly`: the developers rows of `wallets` (an SQL array: a literal,
 * which PostgreSQL hashes on a table without the index on lower(wallet_address), or a subquery
 * on one with it, as a step's own write has), locked
 * SKIP LOCKED, and the wallets of which a row is not among them. A wallet is claimed whole or not
 * at all: of two rows that differ in letter case, one held by an application transaction, the
 * other alone was written and its queue entry done, and the held one kept its old status until a
 * reconciliation. Not claimed, the wallet waits, both rows, for the next round. A row that an
 * application transaction changed just before its lock is locked in its new version, seen in
 * the old one here: its wallet waits a round too.
 */
export const lockWholeWallets = (dev: string, wallets: string) =>
  `locked AS MATERIALIZED (
     SELECT lower(d.wallet_address) AS wallet, d.ctid AS row_id FROM ${dev} d
      WHERE lower(d.wallet_address) = ANY (${wallets})
        FOR UPDATE SKIP LOCKED
   ),
   partly AS (
     SELECT lower(d.wallet_address) AS wallet FROM ${dev} d
      WHERE lower(d.wallet_address) = ANY (${wallets})
        AND d.ctid NOT IN (SELECT row_id FROM locked)
   )`;

/**
 * Locks the developers rows of the `queued` wallets into the temp table `claimed` (wallet, row),
 * whole wallets only (lockWholeWallets), skipping rows another transaction holds; drops queued wallets that have no row (nothing to
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
      `WITH ${lockWholeWallets(dev, "$1::text[]")},
       claiming AS (
         INSERT INTO claimed (wallet, row_id)
         SELECT wallet, row_id FROM locked WHERE wallet NOT IN (SELECT wallet FROM partly)
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

/**
 * Full reconciliation, run inside a sync step's transaction after the step's own diff, so it
 * sees the same snapshot and finds only true drift: (1) chain_stake against Ponder's events up
 * to each cursor; (2) every developers row against chain_stake (late registrations, rows the
 * application changed). It queues what it finds in `affected` with reason `reconcile`.
 * Reads Ponder's stake_event, stakesync.chain_stake and developers; writes chain_stake,
 * applied_event (rebuilt for a drifted chain), `affected` and the temp tables `recon_window`, `drift`.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../../lib/config";
import type { Window } from "../windows";
import { eventKey, signedAmount } from "./fragments";

/**
 * Up to each window's target (the step's new cursor). Returns how many (chain, wallet) stakes
 * had drifted from Ponder and were repaired.
 */
/**
 * Refused developers rows whose wait has passed (retry_at, set by apply-developers.ts),
 * RETRY_REFUSED_AT_ONCE at most, those waiting longest first: put back in line, so that once the
 * application's rule is fixed its rows are written by themselves. Some at a time: refused again,
 * each costs the developers write a savepoint or two, and ten thousand at once would hold their
 * rows and the step for minutes. Still counted refused until written (outbox.ts workCounts): the
 * dead_letter alert does not clear and fire again around each try.
 */
export const RETRY_REFUSED_AT_ONCE = 500;

export async function retryRefused(db: pg.ClientBase): Promise<void> {
  await db.query(
    `UPDATE stakesync.developer_queue SET state = 'pending'
      WHERE wallet IN (SELECT wallet FROM stakesync.developer_queue
                        WHERE state = 'dead' AND coalesce(retry_at, '-infinity') <= now()
                        ORDER BY retry_at NULLS FIRST, wallet LIMIT ${RETRY_REFUSED_AT_ONCE})`,
  );
}

export async function reconcileStakes(
  db: pg.ClientBase,
  config: SidecarConfig,
  windows: Pick<Window, "chainId" | "target" | "finalBlock">[],
) {
  await db.query(
    `CREATE TEMP TABLE recon_window ON COMMIT DROP AS
       SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[]) AS w(chain_id, cursor, final_block)`,
    [windows.map((w) => w.chainId), windows.map((w) => w.target), windows.map((w) => w.finalBlock)],
  );
  await db.query(
    `CREATE TEMP TABLE drift ON COMMIT DROP AS
     WITH expected AS (
       SELECT e.chain_id, e.developer AS wallet,
              sum(${signedAmount("e")}) AS amount,
              max(e.block_number) AS last_block
         FROM recon_window w
         JOIN "${config.ponderSchema}".stake_event e ON e.chain_id = w.chain_id AND e.block_number <= w.cursor
        GROUP BY e.chain_id, e.developer
     ),
     found AS (SELECT cs.* FROM stakesync.chain_stake cs JOIN recon_window w ON w.chain_id = cs.chain_id)
     SELECT COALESCE(x.chain_id, f.chain_id) AS chain_id, COALESCE(x.wallet, f.wallet) AS wallet,
            COALESCE(x.amount, 0) AS amount, COALESCE(x.last_block, f.last_block) AS last_block
       FROM expected x FULL JOIN found f ON f.chain_id = x.chain_id AND f.wallet = x.wallet
      WHERE COALESCE(x.amount, 0) <> COALESCE(f.amount, 0)`,
  );
  const drifted = await db.query(
    `INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block)
     SELECT wallet, chain_id, amount, last_block FROM drift
     ON CONFLICT (wallet, chain_id) DO UPDATE SET amount = excluded.amount, updated_at = now()`,
  );
  if ((drifted.rowCount ?? 0) > 0) {
    // The per-event ledger of a drifted chain cannot be trusted either: rebuild it from Ponder.
    await db.query(
      `DELETE FROM stakesync.applied_event a USING recon_window w
        WHERE a.chain_id = w.chain_id AND w.chain_id IN (SELECT chain_id FROM drift)`,
    );
    await db.query(
      `INSERT INTO stakesync.applied_event (chain_id, event_key, wallet, delta, block_number)
       SELECT e.chain_id, ${eventKey("e")}, e.developer, ${signedAmount("e")}, e.block_number
         FROM recon_window w
         JOIN "${config.ponderSchema}".stake_event e
           ON e.chain_id = w.chain_id AND e.block_number > w.final_block AND e.block_number <= w.cursor
        WHERE w.chain_id IN (SELECT chain_id FROM drift)`,
    );
  }
  await db.query(
    `INSERT INTO affected (wallet, reason) SELECT DISTINCT wallet, 'reconcile' FROM drift ON CONFLICT (wallet) DO NOTHING`,
  );
  await db.query(
    `INSERT INTO affected (wallet, reason)
     SELECT DISTINCT lower(wallet_address), 'reconcile' FROM ${config.developersTable.sql}
     ON CONFLICT (wallet) DO NOTHING`,
  );
  return drifted.rowCount ?? 0;
}

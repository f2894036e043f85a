/**
 * The second half: writes queued developers (queue-developers.ts) to the developers table, with
 * one audit row per changed developer and the welcome job of a first activation, in a READ
 * COMMITTED transaction of its own, right after the step that queued them.
 *
 * The developers table is the application's. Its transactions update other columns of the same
 * rows at any time; in the step's REPEATABLE READ snapshot such a row fails with 40001, and a
 * long application transaction would hold the whole sync. Here the rows are locked first with
 * SKIP LOCKED: a row an application transaction holds stays queued for the next round (100 ms
 * later), the others go on. A row the database refuses (a CHECK, a trigger, an overflow) is set
 * aside as a dead letter for that developer; every other developer is written.
 *
 * Status and staked_at follow the README's rules; amounts are exact numerics. Everything is
 * computed from `stakesync.chain_stake`, which only the leader writes: between the step and this
 * transaction it cannot change.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import { errorText } from "../redact";
import { tokenFactor } from "./queue-developers";

export type Change = {
  wallet: string;
  old_status: string | null;
  new_status: string;
  old_amount: string | null;
  new_amount: string;
  reason: string;
  block_timestamp: string | null;
};

export type Refusal = { wallet: string; error: string };

export type Applied = {
  changes: Change[];
  /** Developers the database refused this round, now dead letters. */
  refused: Refusal[];
  /** Queued developers whose row an application transaction holds: tried again next round. */
  held: number;
};

const NOTHING: Applied = { changes: [], refused: [], held: 0 };

/**
 * SQLSTATE classes that refuse one row's values: data exceptions (an overflow, a value too long),
 * integrity constraints (CHECK, NOT NULL, unique) and an exception raised by a trigger. Anything
 * else (the connection, a lock, permissions, a missing table) concerns every row: it is thrown.
 */
export function refusesRow(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^(22|23|P0)/.test(code);
}

export async function applyDevelopers(db: pg.ClientBase, config: SidecarConfig): Promise<Applied> {
  const { rows } = await db.query<{ queued: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM stakesync.developer_queue WHERE state = 'pending') AS queued",
  );
  if (!rows[0]?.queued) return NOTHING;
  try {
    return await inTransaction(db, async () => {
      const held = await claim(db, config);
      return { changes: await write(db, config, null), refused: [], held };
    });
  } catch (error) {
    if (!refusesRow(error)) throw error;
  }
  // Some row was refused: the same again, one developer at a time, each behind a savepoint.
  return inTransaction(db, async () => {
    const held = await claim(db, config);
    const { rows: claimed } = await db.query<{ wallet: string }>("SELECT wallet FROM claimed ORDER BY wallet");
    const changes: Change[] = [];
    const refused: Refusal[] = [];
    for (const { wallet } of claimed) {
      await db.query("SAVEPOINT developer");
      try {
        changes.push(...(await write(db, config, [wallet])));
        await db.query("RELEASE SAVEPOINT developer");
      } catch (error) {
        if (!refusesRow(error)) throw error;
        await db.query("ROLLBACK TO SAVEPOINT developer");
        refused.push({ wallet, error: errorText(error) });
      }
    }
    await db.query(
      `UPDATE stakesync.developer_queue q
          SET state = 'dead', attempts = q.attempts + 1, last_error = r.error
         FROM unnest($1::text[], $2::text[]) AS r(wallet, error)
        WHERE q.wallet = r.wallet`,
      [refused.map((r) => r.wallet), refused.map((r) => r.error)],
    );
    return { changes, refused, held };
  });
}

async function inTransaction<T>(db: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await db.query("BEGIN ISOLATION LEVEL READ COMMITTED");
  try {
    const result = await work();
    await db.query("COMMIT");
    return result;
  } catch (error) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/**
 * Locks the developers rows of pending queued wallets into the temp table `claimed`, skipping
 * rows another transaction holds; drops queued wallets that have no row (nothing to write: the
 * stake waits in chain_stake until the row appears). Returns how many were skipped.
 */
async function claim(db: pg.ClientBase, config: SidecarConfig): Promise<number> {
  const dev = config.developersTable.sql;
  await db.query("SET LOCAL enable_nestloop = off");
  await db.query(
    `CREATE TEMP TABLE claimed ON COMMIT DROP AS
     SELECT q.wallet FROM stakesync.developer_queue q JOIN ${dev} d ON lower(d.wallet_address) = q.wallet
      WHERE q.state = 'pending'
        FOR UPDATE OF d SKIP LOCKED`,
  );
  await db.query(
    `DELETE FROM stakesync.developer_queue q
      WHERE q.state = 'pending' AND NOT EXISTS (SELECT 1 FROM ${dev} d WHERE lower(d.wallet_address) = q.wallet)`,
  );
  const { rows } = await db.query<{ held: string }>(
    `SELECT count(*) AS held FROM stakesync.developer_queue q
      WHERE q.state = 'pending' AND NOT EXISTS (SELECT 1 FROM claimed c WHERE c.wallet = q.wallet)`,
  );
  return Number(rows[0]?.held ?? 0);
}

/**
 * Writes the claimed developers (or only `only` of them): status, exact stake_amount and the
 * first activation's staked_at; an audit row per changed developer; the welcome job of a first
 * activation. Their queue entries are done, changed or not. The rows are locked by `claim`, so
 * this statement's snapshot has their latest version and nothing can change them meanwhile.
 */
async function write(db: pg.ClientBase, config: SidecarConfig, only: string[] | null): Promise<Change[]> {
  const dev = config.developersTable.sql;
  const { rows } = await db.query<Change>(
    `WITH totals AS (
       SELECT c.wallet, COALESCE(sum(cs.amount), 0) AS raw
         FROM claimed c LEFT JOIN stakesync.chain_stake cs ON cs.wallet = c.wallet
        WHERE $3::text[] IS NULL OR c.wallet = ANY($3::text[])
        GROUP BY c.wallet
     ),
     next AS (
       SELECT d.ctid AS row_id, t.wallet, d.status, d.stake_amount, t.raw * $1::numeric AS new_amount,
              stakesync.next_status(d.status, t.raw >= $2::numeric) AS new_status
         FROM ${dev} d JOIN totals t ON lower(d.wallet_address) = t.wallet
     ),
     done AS (
       DELETE FROM stakesync.developer_queue q USING totals t WHERE q.wallet = t.wallet AND q.state = 'pending'
       RETURNING q.*
     ),
     changed AS (
       UPDATE ${dev} d
          SET status = n.new_status,
              stake_amount = n.new_amount,
              staked_at = COALESCE(d.staked_at, CASE WHEN n.new_status = 'active' THEN to_timestamp(q.activated_at) END),
              updated_at = now()
         FROM next n JOIN done q ON q.wallet = n.wallet
        WHERE d.ctid = n.row_id
          AND (n.status IS DISTINCT FROM n.new_status OR n.stake_amount IS DISTINCT FROM n.new_amount)
       RETURNING n.wallet, n.status AS old_status, d.status AS new_status,
                 n.stake_amount AS old_amount, d.stake_amount AS new_amount, d.email
     ),
     -- Without an email there is nothing to send: the job is recorded skipped at once.
     welcome AS (
       INSERT INTO stakesync.outbox (kind, wallet, state, done_at)
       SELECT 'welcome_email', wallet, CASE WHEN no_email THEN 'skipped' ELSE 'pending' END,
              CASE WHEN no_email THEN now() END
         FROM (SELECT wallet, coalesce(email, '') = '' AS no_email FROM changed
                WHERE new_status = 'active' AND old_status IS DISTINCT FROM 'active') c
       ON CONFLICT (kind, wallet) DO NOTHING
     )
     INSERT INTO stakesync.audit
            (wallet, old_status, new_status, old_amount, new_amount, chain_id, block_number, transaction_hash, reason)
     SELECT c.wallet, c.old_status, c.new_status, c.old_amount, c.new_amount,
            q.chain_id, q.block_number, q.transaction_hash,
            CASE WHEN q.reason = 'reconcile' AND c.old_status = 'pending' THEN 'registered' ELSE q.reason END
       FROM changed c JOIN done q ON q.wallet = c.wallet
     RETURNING wallet, old_status, new_status, old_amount::text, new_amount::text, reason,
               (SELECT q.block_timestamp::text FROM done q WHERE q.wallet = audit.wallet) AS block_timestamp`,
    [tokenFactor(config.stakeDecimals), config.activationThreshold.toString(), only],
  );
  return rows;
}

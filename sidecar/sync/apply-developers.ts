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

/** A round with nothing queued. */
export const NOTHING: Applied = { changes: [], refused: [], held: 0 };

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
  // Shadow mode writes nothing: the queue keeps what a write would do, `stakesync plan` shows it.
  if (config.mode === "shadow") return NOTHING;
  const { rows } = await db.query<{ wallets: string[] }>(
    "SELECT coalesce(array_agg(wallet), '{}') AS wallets FROM stakesync.developer_queue WHERE state = 'pending'",
  );
  const queued = rows[0]?.wallets ?? [];
  if (queued.length === 0) return NOTHING;
  try {
    return await inTransaction(db, async () => {
      const held = await claim(db, config, queued);
      return { changes: await write(db, config, null), refused: [], held };
    });
  } catch (error) {
    if (!refusesRow(error)) throw error;
  }
  // Some row was refused: the same again, halving the failing set behind savepoints until the
  // refused developers stand alone (a few passes for a few bad rows among thousands).
  return inTransaction(db, async () => {
    const held = await claim(db, config, queued);
    const { rows: claimed } = await db.query<{ wallets: string[] }>(
      "SELECT coalesce(array_agg(DISTINCT wallet ORDER BY wallet), '{}') AS wallets FROM claimed",
    );
    const wallets = claimed[0]?.wallets ?? [];
    const changes: Change[] = [];
    const refused: Refusal[] = [];
    const attempt = async (part: string[]): Promise<void> => {
      await db.query("SAVEPOINT developers");
      try {
        changes.push(...(await write(db, config, part)));
        await db.query("RELEASE SAVEPOINT developers");
      } catch (error) {
        if (!refusesRow(error)) throw error;
        await db.query("ROLLBACK TO SAVEPOINT developers");
        await db.query("RELEASE SAVEPOINT developers");
        if (part.length === 1) {
          refused.push({ wallet: part[0] as string, error: errorText(error) });
          return;
        }
        const half = Math.ceil(part.length / 2);
        await attempt(part.slice(0, half));
        await attempt(part.slice(half));
      }
    };
    await attempt(wallets);
    // Every one refused: that is the table (a trigger or a rule for all rows), not these
    // developers. An error for the loop to back off and alert on, not a dead letter each.
    if (wallets.length > 1 && refused.length === wallets.length) {
      throw new Error(`the database refused every developers row of this round: ${refused[0]?.error}`);
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
    // A deferred constraint of the application's would refuse a row only at COMMIT, past every
    // savepoint: checked at each statement instead, where one developer can be set aside.
    await db.query("SET CONSTRAINTS ALL IMMEDIATE");
    // The temp tables here have no statistics: planned as one row each, the joins on the
    // developers table became nested loops (24 s for 10,000 developers instead of 0.3 s).
    await db.query("SET LOCAL enable_nestloop = off");
    const result = await work();
    await db.query("COMMIT");
    return result;
  } catch (error) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/**
 * Locks the developers rows of the `queued` wallets into the temp table `claimed` (wallet, row),
 * skipping rows another transaction holds; drops queued wallets that have no row (nothing to
 * write: the stake waits in chain_stake until the row appears). Returns how many wallets wait.
 * The wallets are looked up through the index on lower(wallet_address): a row held for minutes
 * is tried again every poll, and that must not scan the application's table every time.
 */
async function claim(db: pg.ClientBase, config: SidecarConfig, queued: string[]): Promise<number> {
  const dev = config.developersTable.sql;
  await db.query(
    `CREATE TEMP TABLE claimed ON COMMIT DROP AS
     SELECT lower(d.wallet_address) AS wallet, d.ctid AS row_id FROM ${dev} d
      WHERE lower(d.wallet_address) = ANY($1::text[])
        FOR UPDATE SKIP LOCKED`,
    [queued],
  );
  const { rows } = await db.query<{ held: string }>(
    `WITH present AS (SELECT lower(d.wallet_address) AS wallet FROM ${dev} d WHERE lower(d.wallet_address) = ANY($1::text[])),
     gone AS (
       DELETE FROM stakesync.developer_queue q
        WHERE q.wallet = ANY($1::text[]) AND q.state = 'pending' AND q.wallet NOT IN (SELECT wallet FROM present)
     )
     SELECT count(DISTINCT p.wallet) AS held FROM present p WHERE p.wallet NOT IN (SELECT wallet FROM claimed)`,
    [queued],
  );
  return Number(rows[0]?.held ?? 0);
}

/**
 * Writes the claimed developers (or only `only` of them): status, exact stake_amount and the
 * first activation's staked_at; an audit row per changed row; the welcome job of a first
 * activation. Their queue entries are done, changed or not. Only the rows `claim` locked are
 * written (a wallet may have two rows that differ in letter case), so this statement's snapshot
 * has their latest version and nothing can change them meanwhile.
 */
async function write(db: pg.ClientBase, config: SidecarConfig, only: string[] | null): Promise<Change[]> {
  const dev = config.developersTable.sql;
  const effectsFrom = config.chains.filter((c) => c.effectsFromBlock !== undefined);
  const { rows } = await db.query<Change>(
    `WITH mine AS (
       SELECT * FROM claimed WHERE $3::text[] IS NULL OR wallet = ANY($3::text[])
     ),
     totals AS (
       SELECT w.wallet, COALESCE(sum(cs.amount), 0) AS raw
         FROM (SELECT DISTINCT wallet FROM mine) w LEFT JOIN stakesync.chain_stake cs ON cs.wallet = w.wallet
        GROUP BY w.wallet
     ),
     next AS (
       SELECT d.ctid AS row_id, t.wallet, d.status, d.stake_amount, d.staked_at, t.raw * $1::numeric AS new_amount,
              stakesync.next_status(d.status, t.raw >= $2::numeric) AS new_status
         -- On the wallet first (a hash join; the planner cannot hash a ctid), then the locked row.
         FROM mine m JOIN ${dev} d ON lower(d.wallet_address) = m.wallet AND d.ctid = m.row_id
         JOIN totals t ON t.wallet = m.wallet
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
                 n.stake_amount AS old_amount, d.stake_amount AS new_amount, d.email, n.staked_at AS old_staked_at
     ),
     -- A first activation's job. Recorded skipped at once without an email (nothing to send), or
     -- as historic in a cut-over (EFFECTS_FROM_BLOCK set): when the activating stake predates it on
     -- its chain, or when the row already had staked_at without a job of ours, i.e. the system
     -- before stakesync activated (and welcomed) this developer, who now turns active again.
     welcome AS (
       INSERT INTO stakesync.outbox (kind, wallet, state, done_at, skip_reason)
       SELECT 'welcome_email', wallet, CASE WHEN skip IS NULL THEN 'pending' ELSE 'skipped' END,
              CASE WHEN skip IS NOT NULL THEN now() END, skip
         FROM (SELECT DISTINCT ON (c.wallet) c.wallet,
                      CASE WHEN coalesce(c.email, '') = '' THEN 'no_email'
                           WHEN coalesce(q.activated_block, q.block_number) < f.from_block THEN 'historic'
                           WHEN cardinality($4::int[]) > 0 AND c.old_staked_at IS NOT NULL THEN 'historic' END AS skip
                 FROM changed c JOIN done q ON q.wallet = c.wallet
                 LEFT JOIN unnest($4::int[], $5::bigint[]) AS f(chain_id, from_block)
                        ON f.chain_id = coalesce(q.activated_chain, q.chain_id)
                WHERE c.new_status = 'active' AND c.old_status IS DISTINCT FROM 'active'
                ORDER BY c.wallet) first_activation
       ON CONFLICT (kind, wallet) DO NOTHING
     ),
     audited AS (
       INSERT INTO stakesync.audit
              (wallet, old_status, new_status, old_amount, new_amount, chain_id, block_number, transaction_hash, reason)
       SELECT c.wallet, c.old_status, c.new_status, c.old_amount, c.new_amount,
              q.chain_id, q.block_number, q.transaction_hash,
              CASE WHEN q.reason = 'reconcile' AND c.old_status = 'pending' THEN 'registered' ELSE q.reason END
         FROM changed c JOIN done q ON q.wallet = c.wallet
       RETURNING wallet, old_status, new_status, old_amount::text, new_amount::text, reason
     )
     -- Joined, not a subquery per row: a CTE has no index (a subquery made 10,000 rows take 7 s).
     SELECT a.*, q.block_timestamp::text AS block_timestamp FROM audited a JOIN done q ON q.wallet = a.wallet`,
    [
      tokenFactor(config.stakeDecimals),
      config.activationThreshold.toString(),
      only,
      effectsFrom.map((c) => c.id),
      effectsFrom.map((c) => c.effectsFromBlock),
    ],
  );
  return rows;
}

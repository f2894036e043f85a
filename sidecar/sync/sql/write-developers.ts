import type { SidecarConfig } from "../../../lib/config";
import { inline, type Statements } from "../../db/together";
import { confirmedStake, tokenFactor } from "./fragments";
import { STEP_ENTRIES } from "./queue-developers";

export type Change = {
  wallet: string;
  old_status: string | null;
  new_status: string;
  old_amount: string | null;
  new_amount: string;
  reason: string;
  block_timestamp: string | null;
};

/**
 * Writes the claimed developers (or only `only` of them): status, exact stake_amount and the
 * first activation's staked_at; an audit row per changed row; the welcome job of a first
 * activation. Their queue entries are done, changed or not. Only the rows claimDevelopers locked
 * are written (a wallet may have two rows that differ in letter case), so this statement's
 * snapshot has their latest version and nothing can change them meanwhile.
 * Reads `claimed` and stakesync.chain_stake (in a step's own write, `stale`); writes developers, stakesync.audit, stakesync.outbox
 * and stakesync.developer_queue. Its rows are the changes (`changesFrom`). Its values go in as
 * literals: sent with the COMMIT, one round trip.
 */
export function writeDevelopers(config: SidecarConfig, only: string[] | null, from: EntrySource = "queue"): Statements {
  const dev = config.developersTable.sql;
  const effectsFrom = config.chains.filter((c) => c.effectsFromBlock !== undefined);
  // Without an email only if no row of the wallet has one: of two rows that differ in letter
  // case, the one written may have none; 'no_email' is for good (UNIQUE (kind, wallet)). Decided
  // here by the queue's write, whose statement sees every row committed when it began. Not by a
  // step's own write: its snapshot is the step's, which lacks a row of the wallet inserted since
  // (the other letter case, with the email); its job is made pending, and the worker's sweep,
  // reading the table as it is, skips it if no row has an email then (skipWithoutEmail,
  // effects/outbox.ts). After the historic reasons, on both paths: a job left pending is sent
  // once a row has an email, so a historic activation is decided here whatever the email.
  const noEmail = from === "queue" ? "WHEN NOT w.emailed THEN 'no_email'" : "";
  const statement = inline(
    `WITH mine AS (
       SELECT * FROM claimed WHERE $3::text[] IS NULL OR wallet = ANY($3::text[])
     ),
     totals AS (${from === "queue" ? totalsFromChainStake(config) : TOTALS_FROM_STEP}),
     next AS (
       SELECT d.ctid AS row_id, t.wallet, d.status, d.stake_amount, d.staked_at, t.raw * $1::numeric AS new_amount,
              stakesync.next_status(d.status, t.raw >= $2::numeric) AS new_status, d.email
         -- On the wallet first (a hash join; the planner cannot hash a ctid), then the locked row.
         -- The rows themselves by their ctids (a TID scan): joined alone, the hash join read the
         -- whole application table every round.
         FROM mine m JOIN ${dev} d ON lower(d.wallet_address) = m.wallet AND d.ctid = m.row_id
         JOIN totals t ON t.wallet = m.wallet
        WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM mine))
     ),
     done AS (${from === "queue" ? FROM_QUEUE : FROM_STEP}),
     -- Per wallet, over every row of it as written before this statement (every row of a wallet
     -- is in next, claimed whole: lockWholeWallets), changed or not: whether one has an email, and
     -- whether another system activated it (below). Asked per row, of two rows that differ in
     -- letter case only the one first in order counted, and the other's activation was welcomed.
     wallet_rows AS (
       SELECT wallet, bool_or(coalesce(email, '') <> '') AS emailed,
              bool_or(staked_at IS NOT NULL AND (cardinality($4::int[]) > 0 OR status IN ('inactive', 'active')))
                AS activated_before
         FROM next GROUP BY wallet
     ),
     changed AS (
       UPDATE ${dev} d
          SET status = n.new_status,
              stake_amount = n.new_amount,
              staked_at = COALESCE(d.staked_at, CASE WHEN n.new_status = 'active' THEN to_timestamp(q.activated_at) END),
              -- The statement's time, not the transaction's: a step writes at its end, a bulk
              -- one a second or more after it began (write-in-step.ts), and an application that
              -- polls updated_at must not see a row appear behind a time it has passed.
              updated_at = statement_timestamp()
         FROM next n JOIN done q ON q.wallet = n.wallet
        WHERE d.ctid = n.row_id AND d.ctid = ANY (ARRAY(SELECT row_id FROM next))
          AND (n.status IS DISTINCT FROM n.new_status OR n.stake_amount IS DISTINCT FROM n.new_amount)
       RETURNING n.wallet, n.status AS old_status, d.status AS new_status,
                 n.stake_amount AS old_amount, d.stake_amount AS new_amount
     ),
     -- A row refused before and written now: the application's rule was fixed, likely for the
     -- other refused rows too. They are due at the next reconciliation, not after their waits.
     due AS (
       UPDATE stakesync.developer_queue SET retry_at = now()
        WHERE state = 'dead' AND retry_at > now()
          AND EXISTS (SELECT 1 FROM changed c JOIN done q ON q.wallet = c.wallet WHERE q.attempts > 0)
     ),
     -- A first activation's job. Recorded skipped at once without an email by the queue's write
     -- (nothing to send; a step's own write leaves that to the worker's sweep, above), or
     -- as historic: when the activating stake predates EFFECTS_FROM_BLOCK on its chain (a
     -- cut-over), or when a row of the wallet already had staked_at without a job of ours, i.e.
     -- another system (the one before stakesync, or a stakesync whose schema was dropped)
     -- activated and welcomed this developer, who now turns active again (or whose other row,
     -- another letter case, it keeps active). An inactive or active row was active before:
     -- historic whatever EFFECTS_FROM_BLOCK says now (unset after the cut-over, or on one sidecar
     -- of a rolling deploy, it sent a second email). A pending one with staked_at is ours without
     -- a cut-over (an application trigger held the status at pending, so no job was made); in a
     -- cut-over it may be the old system's, which welcomed on its own activation: historic.
     welcome AS (
       INSERT INTO stakesync.outbox (kind, wallet, state, done_at, skip_reason)
       SELECT 'welcome_email', wallet, CASE WHEN skip IS NULL THEN 'pending' ELSE 'skipped' END,
              CASE WHEN skip IS NOT NULL THEN statement_timestamp() END, skip
         FROM (SELECT DISTINCT ON (c.wallet) c.wallet,
                      CASE WHEN coalesce(q.activated_block, q.block_number) < f.from_block THEN 'historic'
                           WHEN w.activated_before THEN 'historic'
                           ${noEmail} END AS skip
                 FROM changed c JOIN done q ON q.wallet = c.wallet
                 JOIN wallet_rows w ON w.wallet = c.wallet
                 LEFT JOIN unnest($4::int[], $5::bigint[]) AS f(chain_id, from_block)
                        ON f.chain_id = coalesce(q.activated_chain, q.chain_id)
                WHERE c.new_status = 'active' AND c.old_status IS DISTINCT FROM 'active'
                ORDER BY c.wallet) first_activation
       ON CONFLICT (kind, wallet) DO NOTHING
     ),
     audited AS (
       INSERT INTO stakesync.audit
              (wallet, old_status, new_status, old_amount, new_amount, chain_id, block_number, transaction_hash,
               created_at, reason)
       SELECT c.wallet, c.old_status, c.new_status, c.old_amount, c.new_amount,
              q.chain_id, q.block_number, q.transaction_hash, statement_timestamp(),
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
      effectsFrom.map((c) => c.effectsFromBlock as number | bigint),
    ],
  );
  return [statement];
}

/**
 * Where the entries written come from: the queue, whose entries are done once written (changed
 * or not); or, in a step's own write, the step's (STEP_ENTRIES, with no attempts before), which
 * never went to the queue (write-in-step.ts).
 */
export type EntrySource = "queue" | "step";
const FROM_QUEUE = `DELETE FROM stakesync.developer_queue q USING totals t WHERE q.wallet = t.wallet AND q.state = 'pending'
       RETURNING q.*`;
const FROM_STEP = `SELECT e.*, 0 AS attempts FROM (${STEP_ENTRIES}) e WHERE e.wallet IN (SELECT wallet FROM totals)`;

/**
 * Each written wallet's confirmed stake, raw. The queue's write sums stakesync.chain_stake in its own
 * transaction. A step writes in the snapshot in which it found the developers (`stale`), after
 * its last change to chain_stake: the sum found there is the one this would compute, and
 * computing it again cost 10,000 index look-ups at the end of a backfill (docs/performance.md).
 */
const totalsFromChainStake = (config: SidecarConfig) =>
  `SELECT w.wallet, ${confirmedStake("w.wallet", config.chains)} AS raw FROM (SELECT DISTINCT wallet FROM mine) w`;
// One row a wallet: stale has one (staleQuery groups by wallet).
const TOTALS_FROM_STEP = "SELECT s.wallet, s.raw FROM stale s WHERE s.wallet IN (SELECT wallet FROM mine)";

/** The changes, from the rows of `writeDevelopers`. */
export const changesFrom = (rows: unknown[] | undefined) => (rows ?? []) as Change[];

/**
 * SQLSTATE classes that refuse one row's values: data exceptions (an overflow, a value too long),
 * integrity constraints (CHECK, NOT NULL, unique) and an exception raised by a trigger, whatever
 * code its RAISE gives (exec_stmt_raise: a trigger may raise insufficient_privilege, say); and a
 * row-level security policy's WITH CHECK (42501 raised by ExecWithCheckOptions, the server's
 * function that checks a new row against its policies: a permission code, but one row's values).
 * Told by the server's routine, not the message, which follows the server's language. Anything
 * else (the connection, a lock, a permission on the table, a missing table) concerns every row:
 * thrown.
 */
export function refusesRow(error: unknown): boolean {
  const { code, routine } = error as { code?: unknown; routine?: unknown };
  if (typeof code !== "string") return false;
  return (
    /^(22|23|P0)/.test(code) ||
    (routine === "exec_stmt_raise" && !TRANSIENT.test(code)) ||
    (code === "42501" && routine === "ExecWithCheckOptions")
  );
}

/**
 * Codes that say "try again", also when a trigger raises them (a retry signal of its own, or a
 * wrapper that raises what failed inside it again with its SQLSTATE): connection, transaction
 * state, serialization and deadlock, resources, lock not available, canceled. The round fails
 * and is tried again within RETRY_DELAY_MS, not a dead letter waiting for a reconciliation.
 */
const TRANSIENT = /^(08|25|40|53|55|57)/;

/**
 * Outbox jobs in SQL (after graphile-worker): a job is claimed for one attempt by one worker
 * (`locked_by`) with a lease, so a worker that dies mid-job releases it when the lease ends;
 * failures back off through run_at; after RETRY_ATTEMPTS retries of failures the server called
 * permanent a job is dead until an operator
 * retries it. Fencing: a job is claimed, and a send decided, only while the leader lock is held
 * by the leader connection the worker belongs to; what happened to a claimed job is recorded only
 * while the claim is still the worker's. So a worker whose sidecar lost leadership sends nothing
 * more, and a stale worker can never undo another's record.
 */

import { backoffMs } from "../../lib/backoff";
import { EFFECTS_QUERY_MS } from "../db/pools";
import type { Queryable } from "../db/queryable";
import { leaderLockHeldOn } from "../leader";
import { redact } from "../redact";
import { stillWaits } from "../sync/sql/unwritten-developers";
import { WRITE_FAILING_CURRENT_S } from "../sync/sql/write-failing";
import { SEND_DEADLINE_MS } from "./mailer";

export type Job = {
  id: string;
  kind: "welcome_email";
  wallet: string;
  attempts: number;
  email: string | null;
  /** `dead` when the claim found the job's earlier claims ran out LAPSES_AT_MOST times: not to be sent. */
  state: "pending" | "dead";
};

/** Who may act: this worker's id, and the backend pid of its sidecar's leader connection. */
export type Fence = {
  workerId: string;
  leaderPid: number;
  /** The leader's server (LoopState.leaderServer): the lock is held on it, not on another with the same pid. */
  server?: string | null;
};

/**
 * One job's lease: several times as long as one send may take (mailer.ts, SEND_DEADLINE_MS), so
 * a send ends, and its outcome is recorded, well before another worker may claim the job again.
 * What it costs: a job whose worker died in the middle of it waits this long to be tried again.
 */
export const LEASE_MS = 15 * 60_000;

/** A send starts only with this much of its lease left: the longest send, and a minute to record it. */
const LEASE_LEFT_TO_SEND = `${(SEND_DEADLINE_MS + 60_000) / 1000} seconds`;

/**
 * Another worker's claim that ran out is taken over only by a worker that has had the database,
 * without a break, for this long (worker.ts keeps the count). A claim runs out while its worker
 * lives when that worker could not record what it did for longer than the lease had left: the
 * database restarted, failed over, went read-only, or a lock held the outbox. It may hold an
 * email the server took and whose record failed, and records it at its first tick once it can,
 * leader or not: within a statement's limit on a connection gone dark (EFFECTS_QUERY_MS) and a
 * tick. A worker that met the same outage waits that long after it, so the record comes first.
 * What it costs: a job whose worker died waits this much more after any break.
 */
export const TAKE_OVER_AFTER_MS = 2 * EFFECTS_QUERY_MS;

/**
 * Claims of a job that may run out in a row with nothing recorded, each taken over by another
 * worker (migration 021): at the take-over of the last, the job is dead instead of claimed. Each
 * such claim may have sent the email (its worker killed or frozen after the server took it), so
 * this bounds the copies a developer gets when a job's send keeps ending in a crash; a deploy that
 * kills one send in the middle costs nothing, and a claim that ends with its failure recorded
 * starts the count again (a claim given back unsent leaves it: the take-overs before it may have
 * sent).
 */
export const LAPSES_AT_MOST = 3;

/**
 * A write to the outbox that changes nothing: whether this worker could record a job now (not
 * read-only, no lock on the table that keeps writers out). A standby's tick asks it, so that it
 * knows of a break before it leads.
 */
export async function outboxWritable(db: Queryable) {
  await db.query("UPDATE stakesync.outbox SET state = state WHERE false");
}

/**
 * No address, nothing to send: pending welcome jobs of wallets none of whose rows has an email
 * now are recorded skipped (`no_email`), set-based, reading the table as it is. A step's own write
 * makes such a job pending (its snapshot may lack a row inserted since, write-developers.ts); this
 * also catches an email removed since the job was made. Only jobs never claimed or released: a
 * claim that ran out may be of an email sent and not recorded yet (TAKE_OVER_AFTER_MS); the claim
 * takes those, and skips them as well once it has them.
 */
export async function skipWithoutEmail(db: Queryable, developersTable: string) {
  await db.query(
    `UPDATE stakesync.outbox o SET state = 'skipped', done_at = now(), skip_reason = 'no_email'
      WHERE o.state = 'pending' AND o.kind = 'welcome_email' AND o.locked_until IS NULL
        AND NOT EXISTS (SELECT 1 FROM ${developersTable} d
                         WHERE lower(d.wallet_address) = o.wallet AND coalesce(d.email, '') <> '')`,
  );
}

/**
 * The claim being made takes over another worker's that ran out. Not its own: a worker that sent
 * and could not record keeps the send, and claims nothing until it has recorded it (worker.ts),
 * so its own claim that ran out sent nothing (its answer lost, its release failed).
 */
const lapse = "(o.locked_until IS NOT NULL AND o.locked_by IS DISTINCT FROM $1)";
/** ... and it is the LAPSES_AT_MOST-th in a row: the job is dead. */
const lastLapse = `${lapse} AND o.lapses + 1 >= ${LAPSES_AT_MOST}`;

/**
 * Claims the next due job, if this worker's sidecar leads; it carries the developer's email as of
 * now. Another worker's claim that ran out only with `takeOver` (TAKE_OVER_AFTER_MS). A claim that
 * ran out is counted (`lapses`), and at LAPSES_AT_MOST the job comes back dead, not claimed.
 */
export async function claimNextJob(
  db: Queryable,
  developersTable: string,
  fence: Fence,
  takeOver: boolean,
): Promise<Job | undefined> {
  const { rows } = await db.query<Job>(
    `WITH due AS (
       SELECT id FROM stakesync.outbox
        WHERE state = 'pending' AND run_at <= now()
          AND (locked_until IS NULL OR (locked_until < now() AND (locked_by = $1 OR $3::boolean)))
          AND ${leaderLockHeldOn("$2::int", "$4")}
        ORDER BY run_at, id
        LIMIT 1
          FOR UPDATE SKIP LOCKED
     ),
     claimed AS (
       -- SET reads the row as it was: a locked_until still there is a claim that ran out (a
       -- finished, failed or released claim clears it).
       UPDATE stakesync.outbox o
          SET locked_until = CASE WHEN ${lastLapse} THEN NULL ELSE now() + interval '${LEASE_MS / 1000} seconds' END,
              locked_by = $1, attempts = o.attempts + 1,
              lapses = o.lapses + ${lapse}::int,
              state = CASE WHEN ${lastLapse} THEN 'dead' ELSE o.state END,
              last_error = CASE WHEN ${lastLapse}
                                THEN 'its claim ran out ${LAPSES_AT_MOST} times in a row with nothing recorded (a worker killed or frozen in the middle of the send each time): possibly sent, not tried again'
                                ELSE o.last_error END
         FROM due WHERE o.id = due.id
       RETURNING o.id, o.kind, o.wallet, o.attempts, o.state
     )
     SELECT c.id::text, c.kind, c.wallet, c.attempts, c.state,
            -- Of two rows that differ in letter case, one with an email (any one would do: the
            -- first in order, not whichever the scan met first, which may have none).
            (SELECT d.email FROM ${developersTable} d
              WHERE lower(d.wallet_address) = c.wallet AND coalesce(d.email, '') <> ''
              ORDER BY d.email LIMIT 1) AS email
       FROM claimed c`,
    [fence.workerId, fence.leaderPid, takeOver, fence.server ?? null],
  );
  return rows[0];
}

/**
 * The claim is still this worker's, with time left on its lease for the longest send (a worker
 * frozen since the claim starts no send its lease may not outlast), and its sidecar still leads.
 */
export async function maySend(db: Queryable, job: Job, fence: Fence): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM stakesync.outbox
      WHERE id = $1 AND state = 'pending' AND locked_by = $2 AND attempts = $3
        AND locked_until > now() + interval '${LEASE_LEFT_TO_SEND}'
        AND ${leaderLockHeldOn("$4::int", "$5")}`,
    [job.id, fence.workerId, job.attempts, fence.leaderPid, fence.server ?? null],
  );
  return rowCount === 1;
}

/**
 * Gives a claim back unsent (maySend said no, or its answer came too late: nothing went out), so
 * that whoever leads sends it at once, not after the lease and the take-over wait. Nothing
 * written when the claim is no longer this worker's. The attempt stays counted: (locked_by,
 * attempts) is the claim's fence, and a number used once is never used again.
 */
export async function releaseJob(db: Queryable, job: Job, fence: Fence) {
  await db.query(
    `UPDATE stakesync.outbox SET locked_until = NULL
      WHERE id = $1 AND state = 'pending' AND locked_by = $2 AND attempts = $3`,
    [job.id, fence.workerId, job.attempts],
  );
}

/**
 * Records the job done; false (and nothing written) when the claim is no longer this worker's.
 * True as well when this claim's record is there already: a record whose answer was lost (its
 * connection timed out, and the statement went on) is recorded, not lost.
 */
export async function finishJob(db: Queryable, job: Job, fence: Fence, state: "sent" | "skipped") {
  const claim = [job.id, fence.workerId, job.attempts, state];
  const { rowCount } = await db.query(
    `UPDATE stakesync.outbox
        SET state = $4, done_at = now(), locked_until = NULL, last_error = NULL,
            skip_reason = CASE WHEN $4 = 'skipped' THEN 'no_email' END
      WHERE id = $1 AND state = 'pending' AND locked_by = $2 AND attempts = $3`,
    claim,
  );
  if (rowCount === 1) return true;
  // A statement of its own, with a snapshot of its own: the earlier record may have committed
  // while this UPDATE waited for its row, after the UPDATE's snapshot was taken.
  const { rows } = await db.query<{ ours: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM stakesync.outbox
                     WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = $4) AS ours`,
    claim,
  );
  return rows[0]?.ours === true;
}

/** How long a job's temporary failures go uncounted (migration 020): an MTA keeps trying for days; a welcome, a day. */
export const DEFERRED_FOR_AT_MOST = "1 day";

/**
 * A failed send: backed off (lib/backoff.ts), or dead once its failures exceed
 * `retry.attempts`. A `temporary` failure (the server said try later, or none was reached) backs
 * off without counting for DEFERRED_FOR_AT_MOST after the job's first one (migration 020), then
 * counts. Returns the job's state, or undefined (nothing written) when the claim is no longer
 * this worker's.
 */
export async function failJob(
  db: Queryable,
  job: Job,
  fence: Fence,
  error: string,
  retry: { attempts: number; delayMs: number; temporary?: boolean },
): Promise<"pending" | "dead" | undefined> {
  // `counted`: whether this failure counts. `least(failures, attempts - 1)`: an older version's
  // retry of a dead letter reset `attempts` alone, and the count it left must not kill the job
  // at its next failure.
  const { rows } = await db.query<{ state: "pending" | "dead" }>(
    `WITH failed AS (
       SELECT id, NOT $6::boolean OR coalesce(deferred_since, now()) < now() - interval '${DEFERRED_FOR_AT_MOST}' AS counted
         FROM stakesync.outbox
        WHERE id = $1 AND state = 'pending' AND locked_by = $2 AND attempts = $3
          FOR UPDATE
     )
     UPDATE stakesync.outbox o
        SET failures = least(o.failures, o.attempts - 1) + f.counted::int, lapses = 0,
            state = CASE WHEN f.counted AND least(o.failures, o.attempts - 1) + 1 > $7::int THEN 'dead' ELSE 'pending' END,
            deferred_since = CASE WHEN $6::boolean THEN coalesce(o.deferred_since, now()) END,
            last_error = $4, locked_until = NULL,
            run_at = now() + make_interval(secs => $5::double precision / 1000)
       FROM failed f
      WHERE o.id = f.id
      RETURNING o.state`,
    [
      job.id,
      fence.workerId,
      job.attempts,
      error.slice(0, 1000),
      backoffMs(retry.delayMs, job.attempts),
      retry.temporary === true,
      retry.attempts,
    ],
  );
  return rows[0]?.state;
}

export type DeadLetter = {
  id: string;
  /** `welcome_email` (an outbox job) or `developer_sync` (a developers row the database refused). */
  kind: string;
  wallet: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
};

/**
 * Both kinds of dead letter, in one id space (developer_queue takes its ids from the outbox's), a
 * page at a time: a trigger that refuses every row makes a dead letter of every developer that
 * changes, and the whole list in one answer (a million rows, copied twice) could take the
 * sidecar's memory while it leads. `nextAfter`: the `after` of the next page, null at the end.
 */
export async function listDeadLetters(
  db: Queryable,
  page: { after: bigint; limit: number } = { after: 0n, limit: 100 },
): Promise<{ deadLetters: DeadLetter[]; nextAfter: string | null }> {
  const { rows } = await db.query<DeadLetter>(
    `SELECT id::text, kind, wallet, attempts, last_error AS "lastError", created_at AS "createdAt"
       FROM (SELECT id, kind, wallet, attempts, last_error, created_at FROM stakesync.outbox
              WHERE state = 'dead' AND id > $1
             UNION ALL
             SELECT id, 'developer_sync', wallet, attempts, last_error, queued_at
               FROM stakesync.developer_queue WHERE state = 'dead' AND id > $1) d
      ORDER BY d.id LIMIT $2`,
    [page.after.toString(), page.limit + 1],
  );
  const deadLetters = rows.slice(0, page.limit).map(redactedError);
  return { deadLetters, nextAfter: rows.length > page.limit ? (deadLetters.at(-1)?.id ?? null) : null };
}

/** Puts a dead letter back in line (a job with fresh attempts); false when there is no such dead letter. */
export async function retryDeadLetter(db: Queryable, id: bigint): Promise<boolean> {
  const { rowCount } = await db.query(
    `WITH job AS (
       UPDATE stakesync.outbox
          SET state = 'pending', attempts = 0, failures = 0, lapses = 0, deferred_since = NULL, run_at = now(), locked_until = NULL
        WHERE id = $1 AND state = 'dead' RETURNING id
     ),
     developer AS (
       UPDATE stakesync.developer_queue SET state = 'pending', last_error = NULL, retry_at = NULL
        WHERE id = $1 AND state = 'dead' RETURNING id
     )
     SELECT id FROM job UNION ALL SELECT id FROM developer`,
    [id.toString()],
  );
  return rowCount === 1;
}

/**
 * Gives up on a dead welcome email (an address that bounces for good): skipped, reason
 * `discarded`, so that dead_letter clears. A refused developers row is no such letter: the row
 * must follow the chain, so only what refuses it can be fixed. False when there is no dead
 * welcome job with this id.
 */
export async function discardDeadLetter(db: Queryable, id: bigint): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stakesync.outbox SET state = 'skipped', skip_reason = 'discarded', done_at = now(), locked_until = NULL
      WHERE id = $1 AND state = 'dead' AND kind = 'welcome_email'`,
    [id.toString()],
  );
  return rowCount === 1;
}

/** The state of the job or queued developer with this id (a dead letter's id), if there is one. */
export async function deadLetterIdState(db: Queryable, id: bigint): Promise<string | undefined> {
  const { rows } = await db.query<{ state: string }>(
    `SELECT state FROM stakesync.outbox WHERE id = $1
     UNION ALL SELECT state FROM stakesync.developer_queue WHERE id = $1`,
    [id.toString()],
  );
  return rows[0]?.state;
}

/**
 * Pending and dead outbox jobs; developers waiting in the queue (`queued`: synced to chain_stake,
 * not yet written to developers) and rows the database refused (dead, or put back in line after a
 * refusal and not written yet). The outbox's counted through partial indexes on state, so a large
 * outbox of sent jobs costs nothing here; the queue holds only developers not written yet.
 */
export async function workCounts(db: Queryable) {
  type Counts = {
    pending: string;
    dead: string;
    queued: string;
    refused: string;
    refused_last_hour: string;
    unwritten: string;
    write_failing_s: string | null;
  };
  // The queue in one pass: it runs for every /status, /metrics and /ready, and the leader's
  // alert check each second, and the queue holds thousands of rows during a catch-up.
  const { rows } = await db.query<Counts>(
    `SELECT (SELECT count(*) FROM stakesync.outbox WHERE state = 'pending') AS pending,
            (SELECT count(*) FROM stakesync.outbox WHERE state = 'dead') AS dead,
            q.queued, q.refused, q.refused_last_hour,
            (SELECT count(*) FROM stakesync.unwritten_developer u WHERE ${stillWaits("u")}) AS unwritten,
            (SELECT extract(epoch from now() - since)::int FROM stakesync.developers_write_failing
              WHERE failed_at > now() - interval '${WRITE_FAILING_CURRENT_S} seconds') AS write_failing_s
       FROM (SELECT count(*) FILTER (WHERE state = 'pending' AND attempts = 0) AS queued,
                    -- Refused until written: also those a reconciliation put back in line (retryRefused).
                    count(*) FILTER (WHERE state = 'dead' OR attempts > 0) AS refused,
                    -- Of those, the developers first refused in the last hour (refused_at).
                    count(*) FILTER (WHERE refused_at > now() - interval '1 hour') AS refused_last_hour
               FROM stakesync.developer_queue) q`,
  );
  const n = (key: keyof Counts) => Number(rows[0]?.[key] ?? 0);
  return {
    outbox: { pending: n("pending"), dead: n("dead") },
    developers: {
      queued: n("queued"),
      refused: n("refused"),
      refusedLastHour: n("refused_last_hour"),
      unwritten: n("unwritten"),
      /** Seconds the developers write has failed as a whole (write-failing.ts); null: it has not. */
      writeFailingS: rows[0]?.write_failing_s == null ? null : Number(rows[0].write_failing_s),
    },
  };
}

export type JobView = {
  id: string;
  kind: string;
  state: string;
  skipReason: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  doneAt: string | null;
};

/** A developer's outbox jobs, for the admin API: why a welcome email went out, waits, or was skipped. */
export async function listJobs(db: Queryable, wallet: string): Promise<JobView[]> {
  const { rows } = await db.query<JobView>(
    `SELECT id::text, kind, state, skip_reason AS "skipReason", attempts, last_error AS "lastError",
            created_at AS "createdAt", done_at AS "doneAt"
       FROM stakesync.outbox WHERE wallet = $1 ORDER BY id`,
    [wallet],
  );
  return rows.map(redactedError);
}

/**
 * An error as stored, redacted again as it is read: a row written before a fix to redact()
 * (an address it did not know then: `"dave smith"@…`, `dave@[192.0.2.1]`) keeps its text.
 */
function redactedError<T extends { lastError: string | null }>(row: T): T {
  return row.lastError === null ? row : { ...row, lastError: redact(row.lastError) };
}

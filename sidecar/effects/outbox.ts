/**
 * Outbox jobs in SQL (after graphile-worker): a job is claimed with a lease, so a worker that
 * dies mid-job releases it when the lease ends; failures back off through run_at; after
 * RETRY_ATTEMPTS retries a job is dead until an operator retries it.
 */
import type { Queryable } from "../db/queryable";

export type Job = { id: string; kind: "welcome_email"; wallet: string; attempts: number; email: string | null };

const LEASE = "2 minutes";

/** Claims up to `limit` due jobs; each carries the developer's email as of now. */
export async function claimDueJobs(db: Queryable, developersTable: string, limit: number): Promise<Job[]> {
  const { rows } = await db.query<Job>(
    `WITH due AS (
       SELECT id FROM stakesync.outbox
        WHERE state = 'pending' AND run_at <= now() AND (locked_until IS NULL OR locked_until < now())
        ORDER BY run_at, id
        LIMIT $1
          FOR UPDATE SKIP LOCKED
     ),
     claimed AS (
       UPDATE stakesync.outbox o SET locked_until = now() + interval '${LEASE}', attempts = o.attempts + 1
         FROM due WHERE o.id = due.id
       RETURNING o.id, o.kind, o.wallet, o.attempts
     )
     SELECT c.id::text, c.kind, c.wallet, c.attempts,
            (SELECT d.email FROM ${developersTable} d WHERE lower(d.wallet_address) = c.wallet LIMIT 1) AS email
       FROM claimed c`,
    [limit],
  );
  return rows;
}

export async function finishJob(db: Queryable, id: string, state: "sent" | "skipped") {
  await db.query(
    "UPDATE stakesync.outbox SET state = $2, done_at = now(), locked_until = NULL, last_error = NULL WHERE id = $1",
    [id, state],
  );
}

/** Backs the job off (RETRY_DELAY_MS × 2^(attempts−1)), or kills it once retries are spent. Returns its state. */
export async function failJob(
  db: Queryable,
  job: Job,
  error: string,
  retry: { attempts: number; delayMs: number },
): Promise<"pending" | "dead"> {
  const dead = job.attempts > retry.attempts;
  await db.query(
    `UPDATE stakesync.outbox
        SET state = $2, last_error = $3, locked_until = NULL,
            run_at = now() + make_interval(secs => $4::double precision / 1000)
      WHERE id = $1`,
    [job.id, dead ? "dead" : "pending", error.slice(0, 1000), retry.delayMs * 2 ** (job.attempts - 1)],
  );
  return dead ? "dead" : "pending";
}

export type DeadLetter = {
  id: string;
  kind: string;
  wallet: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
};

export async function listDeadLetters(db: Queryable): Promise<DeadLetter[]> {
  const { rows } = await db.query<DeadLetter>(
    `SELECT id::text, kind, wallet, attempts, last_error AS "lastError", created_at AS "createdAt"
       FROM stakesync.outbox WHERE state = 'dead' ORDER BY id`,
  );
  return rows;
}

/** Puts a dead letter back in line with fresh attempts; false when there is no such dead letter. */
export async function retryDeadLetter(db: Queryable, id: bigint): Promise<boolean> {
  const { rowCount } = await db.query(
    "UPDATE stakesync.outbox SET state = 'pending', attempts = 0, run_at = now(), locked_until = NULL WHERE id = $1 AND state = 'dead'",
    [id.toString()],
  );
  return rowCount === 1;
}

export async function outboxCounts(db: Queryable) {
  const { rows } = await db.query<{ pending: string; dead: string }>(
    `SELECT count(*) FILTER (WHERE state = 'pending') AS pending, count(*) FILTER (WHERE state = 'dead') AS dead
       FROM stakesync.outbox`,
  );
  return { pending: Number(rows[0]?.pending ?? 0), dead: Number(rows[0]?.dead ?? 0) };
}

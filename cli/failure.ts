import pg from "pg";
import type { SidecarConfig } from "../lib/config";
import { classify } from "../sidecar/sync/loop";
import { LOCK_NOT_AVAILABLE } from "../sidecar/sync/sql/read-progress";

/**
 * How a read-only command (verify, plan) ends on an error: one line on stderr (and a JSON
 * `{ error }` with --json), exit 2. Errors it expects say their own message; others are marked.
 */
export function commandFailed(command: string, error: unknown, json: boolean, expected: boolean): number {
  const message = expected ? (error as Error).message : `unexpected error: ${(error as Error).message}`;
  if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
  process.stderr.write(`stakesync ${command}: ${message}\n`);
  return 2;
}

/**
 * How long a read-only command waits for a table's lock. Ponder's reorgs and crash recoveries
 * hold its tables for milliseconds, but a Ponder frozen inside one holds them until its session
 * is ended: a command that waited with it would hang and say nothing.
 */
export const COMMAND_LOCK_WAIT_MS = 10_000;

/** The command's lock wait ran out (PostgreSQL's lock_not_available), said as what to do; else undefined. */
export function lockWaitText(error: unknown, lockWaitMs: number): string | undefined {
  if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) return undefined;
  return `a table stayed locked for more than ${lockWaitMs / 1000} s: a Ponder reorg or crash recovery that does not end (a Ponder frozen inside one, see docs/operations.md "Indexer stuck"), or an application's migration of the developers table; try again once it is over`;
}

/**
 * Why a read failed, said as what to do: a lock wait that ran out (lockWaitText), a connection the
 * server ended or lost (a restart, a failover, pg_terminate_backend: try again), else the
 * database's own message.
 */
export function whyUnread(error: unknown, lockWaitMs: number): string {
  const locked = lockWaitText(error, lockWaitMs);
  if (locked) return locked;
  if (classify(error) === "database") {
    const code = (error as { code?: string }).code;
    return `lost the database connection (${code ? `SQLSTATE ${code}` : (error as Error).message.split("\n")[0]}): a restart, a failover, or the session ended; try again once the database answers`;
  }
  return (error as Error).message;
}

/**
 * A read-only command's connection, in one REPEATABLE READ snapshot whose lock waits end after
 * `lockWaitMs`. A connection the server ends (a restart, a failover) is also reported as an event
 * of the client: unheard, it ended the process with exit 1, which verify and plan mean as "a
 * mismatch" and "a change"; heard, the read under way fails with it. `fail` makes the command's
 * own error of a message.
 */
export async function commandSnapshot(
  config: Pick<SidecarConfig, "database">,
  lockWaitMs: number,
  fail: (message: string) => Error,
): Promise<pg.Client> {
  const db = new pg.Client({ connectionString: config.database.url, connectionTimeoutMillis: 10_000 });
  db.on("error", () => undefined);
  await db.connect().catch((error: Error) => {
    throw fail(`cannot reach the database: ${error.message}`);
  });
  await db
    .query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL lock_timeout = '${lockWaitMs}ms'`)
    .catch(async (error: Error) => {
      await db.end().catch(() => undefined);
      throw fail(`cannot begin the read: ${whyUnread(error, lockWaitMs)}`);
    });
  return db;
}

/**
 * Applies sidecar/migrations/*.sql in name order, each once, then makes sure the developers
 * table exists: one transaction under a lock, so two sidecars can start together. Then builds
 * the developers indexes an existing table lacks, concurrently (developers-table.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import type { Logger } from "pino";
import { repoRoot, type TableName } from "../../lib/config";
import { buildIndexes, ensureDevelopersTable } from "./developers-table";
import { LOCKS } from "./locks";
import { inTransaction } from "./transaction";

const MIGRATIONS_DIR = path.join(repoRoot, "sidecar", "migrations");
const MIGRATION_LOCK = LOCKS.migration;

/**
 * The oldest PostgreSQL the sidecar runs on: 14 (the leader's session sets idle_session_timeout).
 * On 13 that SET failed at every try to lead, logged as "cannot reach the database": no sidecar
 * ever led, and nothing said why.
 */
export const MIN_SERVER_VERSION = 140_000;

/** A server older than `min` (server_version_num) is a configuration error, with no retry. */
export class ServerVersionError extends Error {
  constructor(found: string) {
    super(`DATABASE_URL: PostgreSQL ${found}; stakesync needs PostgreSQL ${MIN_SERVER_VERSION / 10_000} or newer`);
    this.name = "ServerVersionError";
  }
}

export async function requireServerVersion(db: pg.ClientBase, min = MIN_SERVER_VERSION): Promise<void> {
  const { rows } = await db.query<{ num: number; version: string }>(
    "SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version",
  );
  const [server] = rows;
  if (server && server.num < min) throw new ServerVersionError(server.version);
}

/**
 * The migrating session's bounds. A sidecar frozen (SIGSTOP, a stalled VM) or cut off inside its
 * migration kept the migration lock, and its DDL's locks on stakesync's tables and the
 * application's, for as long as the server kept its session: for good, or the hours TCP takes.
 * Every other sidecar's start, the leader's steps and the application's writes to developers
 * waited behind them. Now the server ends a session idle in its transaction for 30 s (the
 * migration rolls back whole), and notices a vanished host within seconds; a lock waited for
 * more than 5 s is given up on, and the start tries again after its backoff.
 */
const migrationSession = (lockWaitMs: number) => ({
  idle_in_transaction_session_timeout: "'30s'",
  lock_timeout: String(Math.trunc(lockWaitMs)),
  tcp_keepalives_idle: "3",
  tcp_keepalives_interval: "2",
  tcp_keepalives_count: "3",
});
export const MIGRATION_LOCK_WAIT_MS = 5000;

/** Migrates in the bounds of migrationSession, and leaves the session as it found it. */
export async function migrate(
  db: pg.ClientBase,
  developersTable: TableName,
  log: Logger,
  { lockWaitMs = MIGRATION_LOCK_WAIT_MS } = {},
): Promise<void> {
  await requireServerVersion(db);
  const settings = Object.entries(migrationSession(lockWaitMs));
  await db.query(settings.map(([name, value]) => `SET ${name} = ${value}`).join("; "));
  try {
    await migrateWithin(db, developersTable, log);
  } finally {
    await db.query(settings.map(([name]) => `RESET ${name}`).join("; ")).catch(() => undefined);
  }
}

async function migrateWithin(db: pg.ClientBase, developersTable: TableName, log: Logger): Promise<void> {
  const indexes = await inTransaction(db, "BEGIN", async () => {
    await db.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    // Look first: under the least-privilege role the schema exists and the role cannot create one.
    const { rowCount } = await db.query("SELECT 1 FROM pg_namespace WHERE nspname = 'stakesync'");
    if (rowCount === 0) await db.query("CREATE SCHEMA stakesync");
    await db.query(
      "CREATE TABLE IF NOT EXISTS stakesync.schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const { rows } = await db.query<{ name: string }>("SELECT name FROM stakesync.schema_migrations");
    const applied = new Set(rows.map((r) => r.name));
    for (const name of readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith(".sql"))
      .sort()) {
      if (applied.has(name)) continue;
      await db.query(readFileSync(path.join(MIGRATIONS_DIR, name), "utf8"));
      await db.query("INSERT INTO stakesync.schema_migrations (name) VALUES ($1)", [name]);
      log.info({ migration: name }, "applied migration");
    }
    return ensureDevelopersTable(db, developersTable);
  });
  await buildIndexes(db, developersTable, indexes, log);
}

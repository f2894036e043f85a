/**
 * The application's shared table (DEVELOPERS_TABLE). The sidecar creates it when missing and
 * adds only its own columns to an existing one: other columns, rows and constraints stay.
 * It looks before it alters, so a table prepared by a DBA with docs/sql/roles.sql (the same
 * definition) needs no DDL rights.
 */
import pg from "pg";
import type { Logger } from "pino";
import { parseTableName, type TableName } from "../../lib/config";
import { errorText } from "../redact";
import { LOCKS } from "./locks";
import type { Queryable } from "./queryable";
import { inline, lastRows, yes } from "./together";
import { inTransaction } from "./transaction";

const SIDECAR_COLUMNS: Record<string, string> = {
  email: "text",
  status: "text NOT NULL DEFAULT 'pending'",
  stake_amount: "numeric NOT NULL DEFAULT 0",
  staked_at: "timestamptz",
  updated_at: "timestamptz NOT NULL DEFAULT now()",
};

/** An existing developers table whose columns cannot hold what the sidecar writes, or that its role cannot see. */
export class DevelopersTableError extends Error {
  constructor(table: TableName, column: string, found: string, needed: string) {
    super(`DEVELOPERS_TABLE ${table.schema}.${table.table}: column ${column} is ${found}; stakesync needs ${needed}`);
    this.name = "DevelopersTableError";
  }
}

/**
 * information_schema lists only the columns the role has a privilege on: a sidecar's role
 * without its grants saw an existing table as missing (then failed to create it, "permission
 * denied for database", paged as the database unreachable) or a column as missing.
 */
class NotVisibleError extends DevelopersTableError {
  constructor(table: TableName, columns: string[]) {
    super(table, columns.join(", "), "there but not visible to the sidecar's role", "SELECT on it");
    this.message = `DEVELOPERS_TABLE ${table.schema}.${table.table}: the sidecar's role cannot see column(s) ${columns.join(", ")} (its privileges): grant it SELECT ON ${table.sql}, and UPDATE on the sidecar's columns, as docs/sql/roles.sql does`;
  }
}

type Column = { column_name: string; data_type: string; udt_name: string; max_length: number | null; type: string };

/**
 * What each column the sidecar reads or writes must be. A numeric with a scale would round
 * 12.345678 to 12.35, rewrite and audit the row at every reconciliation, and overflow on a large
 * stake; a timestamp without a zone would shift staked_at; a short status would refuse "inactive".
 */
const NEEDED: Record<string, { ok: (c: Column) => boolean; needed: string }> = {
  wallet_address: { ok: (c) => isText(c, 42), needed: "text (or varchar of 42 or more, or citext)" },
  email: { ok: (c) => isText(c, 3), needed: "text (or varchar, or citext)" },
  status: { ok: (c) => isText(c, 8), needed: "text (or varchar of 8 or more)" },
  stake_amount: { ok: (c) => c.type === "numeric", needed: "numeric without precision or scale (amounts are exact)" },
  staked_at: { ok: (c) => c.data_type === "timestamp with time zone", needed: "timestamptz" },
  updated_at: { ok: (c) => c.data_type === "timestamp with time zone", needed: "timestamptz" },
};

function isText(c: Column, minLength: number) {
  if (c.data_type === "text" || c.udt_name === "citext") return true;
  return c.data_type === "character varying" && (c.max_length === null || c.max_length >= minLength);
}

/** The columns an existing table must have already: the application's, never added by the sidecar. */
const APPLICATION_COLUMNS = ["wallet_address", "email"];

/**
 * The indexes the sync's look-ups want: wallets are matched case-insensitively (set-based and
 * fast with the first), and the second finds rows registered in the last minute
 * (sync/sql/find-registrations.ts).
 */
const indexesOf = (name: TableName) =>
  [
    { index: `${name.table}_wallet_lower_idx`, definition: "(lower(wallet_address))" },
    { index: `${name.table}_pending_idx`, definition: "(updated_at) WHERE status = 'pending'" },
  ] as const;
export type DevelopersIndex = ReturnType<typeof indexesOf>[number];

/**
 * Creates the table, or adds the sidecar's missing columns to an existing one, in the caller's
 * transaction. A table created here gets its indexes here too (empty, they cost nothing); an
 * existing one's missing indexes are returned, for buildIndexes after the transaction: built in
 * it, they held the application's writes for the whole build, as long as the table is large.
 */
export async function ensureDevelopersTable(db: pg.ClientBase, name: TableName): Promise<IndexStep[]> {
  const { rows } = await db.query<Column>(
    `SELECT a.attname AS column_name, c.data_type, c.udt_name, c.character_maximum_length AS max_length,
            format_type(a.atttypid, a.atttypmod) AS type
       FROM information_schema.columns c
       JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                          AND a.attname = c.column_name
      WHERE c.table_schema = $1 AND c.table_name = $2`,
    [name.schema, name.table],
  );
  // What exists, whatever the role may see (pg_attribute lists every column to every role).
  const { rows: existing } = await db.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [name.sql],
  );
  const hidden = existing
    .map((c) => c.name)
    .filter((c) => (c in NEEDED || c in SIDECAR_COLUMNS) && !rows.some((r) => r.column_name === c));
  if (hidden.length > 0) throw new NotVisibleError(name, hidden);
  for (const column of rows) {
    const rule = NEEDED[column.column_name];
    if (rule && !rule.ok(column)) throw new DevelopersTableError(name, column.column_name, column.type, rule.needed);
  }
  // Added by the sidecar, an empty email column would mark every welcome 'no_email' for good,
  // and a wrong DEVELOPERS_TABLE (the application keeps emails elsewhere) would go unnoticed.
  for (const column of rows.length === 0 ? [] : APPLICATION_COLUMNS) {
    if (!rows.some((r) => r.column_name === column)) {
      throw new DevelopersTableError(name, column, "missing", (NEEDED[column] as { needed: string }).needed);
    }
  }
  // DDL on the application's table waits for its transactions, and every later query on the table
  // waits behind the DDL: migrate.ts bounds the session's lock waits (the caller retries) rather
  // than stall the application.
  if (rows.length === 0) {
    await db.query(`CREATE SCHEMA IF NOT EXISTS "${name.schema}"`);
    await db.query(`
      CREATE TABLE ${name.sql} (
        id bigserial PRIMARY KEY,
        wallet_address text NOT NULL UNIQUE,
        email text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'inactive')),
        stake_amount numeric NOT NULL DEFAULT 0,
        staked_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    for (const { index, definition } of indexesOf(name))
      await db.query(`CREATE INDEX "${index}" ON ${name.sql} ${definition}`);
    return [];
  }
  const have = new Set(rows.map((r) => r.column_name));
  const missing = Object.entries(SIDECAR_COLUMNS).filter(([column]) => !have.has(column));
  if (missing.length > 0) {
    await db.query(
      `ALTER TABLE ${name.sql} ${missing.map(([column, type]) => `ADD COLUMN ${column} ${type}`).join(", ")}`,
    );
  }
  return indexSteps(db, name);
}

/** An index to build, or an invalid leftover of a failed build (a crash, a cancel) to drop first, or only. */
export type IndexStep = DevelopersIndex & { leftover: boolean; build: boolean };

/**
 * What the developers indexes need: none for a valid one; an invalid one of ours is a leftover
 * to drop, and to build again unless the application has its own index on lower(wallet_address)
 * of another name (a second would cost every write to the table).
 */
async function indexSteps(db: Queryable, name: TableName): Promise<IndexStep[]> {
  const steps: IndexStep[] = [];
  for (const wanted of indexesOf(name)) {
    const valid = await indexValid(db, `"${name.schema}"."${wanted.index}"`);
    if (valid) continue;
    const leftover = valid === false;
    const build = !(wanted.index.endsWith("_wallet_lower_idx") && (await walletIndexed(db, name)));
    if (leftover || build) steps.push({ ...wanted, leftover, build });
  }
  return steps;
}

/** Whether the index `qualified` ("schema"."name") is valid; undefined when there is none. */
async function indexValid(db: Queryable, qualified: string): Promise<boolean | undefined> {
  const { rows } = await db.query<{ valid: boolean }>(
    "SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
    [qualified],
  );
  return rows[0]?.valid;
}

const INDEX_LOCK = LOCKS.indexBuild;

/**
 * Builds the developers indexes `planned` found missing, CONCURRENTLY, each in its own
 * transactions, outside any other: the application reads and writes the table throughout. A
 * build waits for every transaction older than it in the database to end, however long (no
 * lock_timeout, no statement_timeout: one given up on leaves an invalid index on the
 * application's table). One sidecar builds at a time, under a lock it only tries: two builds
 * of one index at once deadlocked (40P01), and a drop of the other's build in progress, taken
 * for a leftover, killed it at every retry. A sidecar that finds the lock taken starts without
 * waiting, on the slower path until the index is there. Under the least-privilege role a DBA
 * creates these (docs/sql/roles.sql); without the privilege the sync is slower, not wrong.
 */
export async function buildIndexes(db: pg.ClientBase, name: TableName, planned: IndexStep[], log: Logger) {
  if (planned.length === 0) return;
  const table = `${name.schema}.${name.table}`;
  const { rows } = await db.query<{ taken: boolean }>("SELECT pg_try_advisory_lock($1) AS taken", [INDEX_LOCK]);
  if (!rows[0]?.taken) {
    log.info({ table }, "another sidecar builds the developers indexes; starting without waiting for them");
    return;
  }
  await db.query("SET lock_timeout = 0; SET statement_timeout = 0");
  try {
    // Again under the lock: what another sidecar built meanwhile is there.
    for (const { index, definition, leftover, build } of await indexSteps(db, name)) {
      const qualified = `"${name.schema}"."${index}"`;
      try {
        if (leftover) await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualified}`);
        if (!build) continue;
        log.info({ index, table }, "building an index on the developers table, concurrently");
        await db.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS "${index}" ON ${name.sql} ${definition}`);
        if (!(await indexValid(db, qualified))) {
          log.warn(
            { index, table },
            "an index not valid after its build; starting without it, the next start tries again",
          );
          await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualified}`).catch(() => undefined);
        }
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        // The database gone (a client's error has no SQLSTATE): the start retries, as for the migration.
        if (code === "" || /^(08|57P)/.test(code)) throw error;
        // Anything else (no privilege, a deadlock with the application's DDL, a cancel, a full
        // disk) leaves the sync slower, not wrong: it starts without the index, which the next
        // start tries again. Retried here, every build would wait for every older transaction
        // again, and no sidecar would start meanwhile.
        log.warn(
          { index, table, err: errorText(error) },
          code === "42501"
            ? "cannot create or drop this index (no privilege): see docs/sql/roles.sql"
            : "could not build this index; starting without it (slower), the next start tries again",
        );
        if (code !== "42501") await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualified}`).catch(() => undefined);
      }
    }
  } finally {
    await db.query("RESET lock_timeout; RESET statement_timeout").catch(() => undefined);
    await db.query("SELECT pg_advisory_unlock($1)", [INDEX_LOCK]).catch(() => undefined);
  }
}

/**
 * Whether the developers table has a usable index on lower(wallet_address) (the one above, or a
 * DBA's of another name): without it, the step's look-ups pass their wallets through the client,
 * as a bound array that PostgreSQL hashes (sync/sql/queue-developers.ts).
 */
export async function walletIndexed(db: Queryable, name: TableName): Promise<boolean> {
  return yes(
    await lastRows(db, [
      inline(
        `SELECT EXISTS (SELECT 1 FROM pg_index i
                         WHERE i.indrelid = to_regclass($1) AND i.indisvalid AND i.indpred IS NULL
                           AND pg_get_indexdef(i.indexrelid, 1, true) ~ '^lower\\(\\(?wallet_address\\)?(::text)?\\)$') AS yes`,
        [name.sql],
      ),
    ]),
  );
}

/**
 * Whether row-level security applies to this session's role on the developers table. Then its
 * policies decide what the sidecar sees and writes: a row a policy hides from it is not synced
 * (never queued, or held queued when only the UPDATE policy hides it), and a row its WITH CHECK
 * refuses is a dead letter. Said at start: a policy meant for the application's own users that
 * also binds the sidecar's role is easy to deploy by mistake.
 */
export async function rowSecurityActive(db: Queryable, name: TableName): Promise<boolean> {
  return yes(await lastRows(db, [inline("SELECT row_security_active(to_regclass($1)) AS yes", [name.sql])]));
}

/**
 * For a local stack (`npm run dev`, the bench, the soak): the table as the sidecar creates it,
 * made before any sidecar runs, so the application (the demo, a workload) can insert rows first.
 */
export async function createDevelopersTable(
  databaseUrl: string,
  log: Logger,
  name = parseTableName("developers") as TableName,
): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const indexes = await inTransaction(db, "BEGIN", () => ensureDevelopersTable(db, name));
    await buildIndexes(db, name, indexes, log);
  } finally {
    await db.end();
  }
}

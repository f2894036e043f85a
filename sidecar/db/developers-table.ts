/**
 * The application's shared table (DEVELOPERS_TABLE). The sidecar creates it when missing and
 * adds only its own columns to an existing one: other columns, rows and constraints stay.
 * It looks before it alters, so a table prepared by a DBA with docs/sql/roles.sql (the same
 * definition) needs no DDL rights.
 */
import type pg from "pg";
import type { TableName } from "../../lib/config";

const SIDECAR_COLUMNS: Record<string, string> = {
  email: "text",
  status: "text NOT NULL DEFAULT 'pending'",
  stake_amount: "numeric NOT NULL DEFAULT 0",
  staked_at: "timestamptz",
  updated_at: "timestamptz NOT NULL DEFAULT now()",
};

export async function ensureDevelopersTable(db: pg.ClientBase, name: TableName): Promise<void> {
  const { rows } = await db.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
    [name.schema, name.table],
  );
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
  } else {
    const have = new Set(rows.map((r) => r.column_name));
    const missing = Object.entries(SIDECAR_COLUMNS).filter(([column]) => !have.has(column));
    if (missing.length > 0) {
      await db.query(
        `ALTER TABLE ${name.sql} ${missing.map(([column, type]) => `ADD COLUMN ${column} ${type}`).join(", ")}`,
      );
    }
  }
  // Wallets are matched case-insensitively; this index keeps that match set-based and fast.
  const index = `${name.table}_wallet_lower_idx`;
  const { rowCount } = await db.query("SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2", [
    name.schema,
    index,
  ]);
  if (rowCount === 0) await db.query(`CREATE INDEX "${index}" ON ${name.sql} (lower(wallet_address))`);
}

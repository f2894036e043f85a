/**
 * The application's shared table (DEVELOPERS_TABLE). The sidecar creates it when missing and
 * adds only its own columns to an existing one: other columns, rows and constraints stay.
 */
import type pg from "pg";
import type { TableName } from "../../lib/config";

/** `sql` is the quoted name, ready to splice into a statement. */
export async function ensureDevelopersTable(db: pg.ClientBase, name: TableName): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS "${name.schema}"`);
  await db.query(`
    CREATE TABLE IF NOT EXISTS ${name.sql} (
      id bigserial PRIMARY KEY,
      wallet_address text NOT NULL UNIQUE,
      email text,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'inactive')),
      stake_amount numeric NOT NULL DEFAULT 0,
      staked_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await db.query(`
    ALTER TABLE ${name.sql}
      ADD COLUMN IF NOT EXISTS email text,
      ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'pending',
      ADD COLUMN IF NOT EXISTS stake_amount numeric NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS staked_at timestamptz,
      ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now()`);
  // Wallets are matched case-insensitively; this index keeps that match set-based and fast.
  await db.query(`CREATE INDEX IF NOT EXISTS "${name.table}_wallet_lower_idx" ON ${name.sql} (lower(wallet_address))`);
}

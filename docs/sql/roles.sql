-- Least-privilege roles for stakesync (docs/operations.md). Run once, as a superuser or the
-- database owner, in the application's database. Names assume the defaults: Ponder's schema
-- "stakevault" (and a views schema, if you use one), the sidecar's schema "stakesync", the
-- shared table public.developers. Set passwords separately: ALTER ROLE … PASSWORD '…'.

-- The indexer (`ponder start`, `ponder serve`): creates and owns Ponder's schemas
-- (ponder_sync, stakevault, the views schema), so it needs CREATE on the database.
CREATE ROLE stakesync_indexer LOGIN;
DO $$ BEGIN
  EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO stakesync_indexer', current_database());
END $$;

-- The sidecar: reads Ponder, owns its own schema, and writes only its columns of developers.
CREATE ROLE stakesync_sidecar LOGIN;
DO $$ BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO stakesync_sidecar', current_database());
END $$;
CREATE SCHEMA IF NOT EXISTS stakesync AUTHORIZATION stakesync_sidecar;

-- Whatever the indexer creates from now on (schemas, tables, views) the sidecar may read. TRIGGER:
-- the sidecar puts a statement trigger on Ponder's stake_event that makes Ponder's commits wait
-- for the WAL flush (Ponder turns synchronous_commit off for its connections, and a PostgreSQL
-- crash then loses its last blocks while it runs on; docs/operations.md "Database unreachable").
ALTER DEFAULT PRIVILEGES FOR ROLE stakesync_indexer GRANT USAGE ON SCHEMAS TO stakesync_sidecar;
ALTER DEFAULT PRIVILEGES FOR ROLE stakesync_indexer GRANT SELECT, TRIGGER ON TABLES TO stakesync_sidecar;

-- The shared table belongs to the application. Create it (or let your migrations do so) with
-- the sidecar's columns and the case-insensitive wallet index, so the sidecar needs no DDL.
-- Same definition as sidecar/db/developers-table.ts, which creates it when it is missing.
CREATE TABLE IF NOT EXISTS public.developers (
  id bigserial PRIMARY KEY,
  wallet_address text NOT NULL UNIQUE,
  email text,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'inactive')),
  stake_amount numeric NOT NULL DEFAULT 0,
  staked_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS developers_wallet_lower_idx ON public.developers (lower(wallet_address));
CREATE INDEX IF NOT EXISTS developers_pending_idx ON public.developers (updated_at) WHERE status = 'pending';

GRANT USAGE ON SCHEMA public TO stakesync_sidecar;
GRANT SELECT ON public.developers TO stakesync_sidecar;
GRANT UPDATE (status, stake_amount, staked_at, updated_at) ON public.developers TO stakesync_sidecar;

-- The sidecar also relies on three rights PUBLIC has by default: TEMPORARY on the database (each
-- sync transaction passes its sets through temp tables), USAGE on language plpgsql (the
-- developers write empties its temp table in a DO block, and a migration creates a plpgsql
-- function, stakesync.stop_unless), and EXECUTE on pg_logical_emit_message (GET
-- /developers/:wallet writes a one-line WAL message when what it read is not flushed yet, so that
-- its commit flushes it; the right is checked each time the statement starts, whether or not it
-- writes the message, so without it every such read answers 500, "permission denied for function
-- pg_logical_emit_message" in the log). A hardened database that revoked any of them must grant it back to the sidecar, the
-- function by its signature: on PostgreSQL 17 and later
--   GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text, boolean) TO stakesync_sidecar;
-- on 14 to 16
--   GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO stakesync_sidecar;

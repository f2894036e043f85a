-- Ponder commits with synchronous_commit off: its pool sets it on every connection (Ponder 0.17.7,
-- utils/pg.ts). A PostgreSQL crash then loses its last blocks' commits, and Ponder, running on,
-- never indexes those blocks again: its stake_event misses their events until it restarts, the
-- developers rows with it, and the sidecar takes an event it had applied for a reorg's and takes
-- it back (found by the soak's PostgreSQL crash). The sidecar puts a statement trigger on
-- Ponder's stake_event that calls this (sidecar/sync/durable-ponder.ts): every transaction that
-- changes Ponder's events commits once the WAL holding it is flushed on this server. `local`, not
-- `on`: with a synchronous standby named and down, `on` would hold every block of Ponder's (a
-- failover may still take back its last commits: restart Ponder after one, docs/operations.md).
-- Called by OID at each statement, it needs no privilege of Ponder's role on this schema (a
-- function's EXECUTE is PUBLIC's).
CREATE FUNCTION stakesync.durable_commit() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'local', true);
  RETURN NULL;
END $$;

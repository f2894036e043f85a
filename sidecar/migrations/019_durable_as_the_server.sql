-- Ponder's commits as durable as the server's own setting for a session (migration 018 made them
-- `local` whatever it was). Where the operator names synchronous standbys and keeps
-- synchronous_commit at `on` (or `remote_write`, `remote_apply`) so that a failover loses no
-- commit, Ponder's alone skipped the wait: a failover could take back its last blocks while it ran
-- on, and never indexed them again (a stake missing from Ponder and developers until it
-- restarted). Now its transactions that change its events commit with the value its session had
-- before Ponder's SET (pg_settings.reset_val: the server's, the database's or the role's), never
-- less than `local`. A synchronous standby down then holds Ponder's blocks as it holds the
-- application's commits: the operator's choice for that server.
-- pg_settings builds every setting's row (0.8 ms a look-up, measured): looked up once per session
-- and kept in the session's `stakesync.ponder_commit`, so each transaction after pays a
-- current_setting (microseconds). A change of the server's setting reaches Ponder's connections
-- made after it (restart Ponder after one).
CREATE OR REPLACE FUNCTION stakesync.durable_commit() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  wanted text;
BEGIN
  IF current_setting('synchronous_commit') = 'off' THEN
    wanted := current_setting('stakesync.ponder_commit', true);
    IF wanted IS NULL OR wanted = '' THEN
      SELECT CASE WHEN reset_val IN ('off', '') THEN 'local' ELSE reset_val END INTO wanted
        FROM pg_catalog.pg_settings WHERE name = 'synchronous_commit';
      PERFORM set_config('stakesync.ponder_commit', coalesce(wanted, 'local'), false);
    END IF;
    PERFORM set_config('synchronous_commit', coalesce(wanted, 'local'), true);
  END IF;
  RETURN NULL;
END $$;

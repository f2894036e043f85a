-- Ponder's commits as durable as the server's own setting for a session (migration 018 made them
-- `local` whatever it was). Where the operator names synchronous standbys and keeps
-- synchronous_commit at `on` (or `remote_write`, `remote_apply`) so that a failover loses no
-- commit, Ponder's alone skipped the wait: a failover could take back its last blocks while it ran
-- on, and never indexed them again (a stake missing from Ponder and developers until it
-- restarted). Now its transactions that change its events commit with the value its session had
-- before Ponder's SET (pg_settings.reset_val: the server's, the database's or the role's), never
-- less than `local`. A synchronous standby down then holds Ponder's blocks as it holds the
-- application's commits: the operator's choice for that server. Looked up once per transaction
-- (its first statement on stake_event sets it; the next ones see it set).
CREATE OR REPLACE FUNCTION stakesync.durable_commit() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  wanted text;
BEGIN
  IF current_setting('synchronous_commit') = 'off' THEN
    SELECT reset_val INTO wanted FROM pg_catalog.pg_settings WHERE name = 'synchronous_commit';
    PERFORM set_config('synchronous_commit', CASE WHEN wanted IN ('off', '') OR wanted IS NULL THEN 'local' ELSE wanted END, true);
  END IF;
  RETURN NULL;
END $$;

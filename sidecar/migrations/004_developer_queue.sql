-- Developers whose row must be brought to their confirmed stake. The sync step fills it in its
-- REPEATABLE READ transaction, consistent with Ponder's tables; a READ COMMITTED transaction then
-- applies it to the developers table. That table is the application's: it updates other columns
-- of the same rows all day, and a REPEATABLE READ update of a row changed meanwhile fails with
-- 40001. The apply skips rows an application transaction holds (they wait here for the next
-- step) and sets aside rows the database refuses (state 'dead', a dead letter per developer), so
-- one row never stops the others.
CREATE TABLE stakesync.developer_queue (
  wallet text PRIMARY KEY,
  -- Dead letters of both kinds are retried by id through one admin route: one id space.
  id bigint NOT NULL DEFAULT nextval('stakesync.outbox_id_seq') UNIQUE,
  reason text NOT NULL CHECK (reason IN ('stake', 'reorg', 'reconcile')),
  -- The latest event behind the change, for the audit row.
  chain_id integer,
  block_number bigint,
  transaction_hash text,
  block_timestamp bigint,
  -- Block time of the stake that first took the confirmed stake to the threshold: staked_at.
  activated_at bigint,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  queued_at timestamptz NOT NULL DEFAULT now()
);

-- The status rule, stated once: active at or above the threshold; below it, a developer never
-- activated stays pending and one who was active becomes inactive.
CREATE FUNCTION stakesync.next_status(current_status text, reaches_threshold boolean) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN reaches_threshold THEN 'active'
              WHEN current_status = 'pending' THEN 'pending'
              ELSE 'inactive' END;

-- /status, /metrics and the alert rules count jobs by state every second: with a million sent
-- jobs, only the few pending or dead ones are read.
CREATE INDEX outbox_dead_idx ON stakesync.outbox (id) WHERE state = 'dead';
CREATE INDEX developer_queue_state_idx ON stakesync.developer_queue (state);

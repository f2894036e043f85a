-- Developers whose confirmed stake a catch-up step changed without writing their rows: while
-- Ponder backfills, a step taken early only to leave less for the step that ends the backfill
-- (windows.ts, `early`) folds its events into chain_stake and leaves its developers here, for
-- that step, which writes every developer it touches anyway. Committed with the cursor, as the
-- stakes are: a crash between the two steps loses none. One row per wallet, as the step's
-- `affected`: the latest event behind the change (for the audit row), and 'reorg' when an
-- applied block changed.
CREATE TABLE stakesync.unwritten_developer (
  wallet text PRIMARY KEY,
  chain_id integer,
  block_number bigint,
  transaction_hash text,
  block_timestamp bigint,
  reason text NOT NULL CHECK (reason IN ('stake', 'reorg')),
  -- The stake that first took the confirmed stake to the threshold, found by the early step (its
  -- block time, chain and block): the step that writes the developer does not search Ponder's
  -- events for it again, unless a reorg changed them.
  activated_at bigint,
  activated_chain integer,
  activated_block bigint,
  -- The commit of the early step that left it (or carried it on): its cursor's updated_at. A
  -- cursor moved since by a step that did not take the row (a sidecar of a version before this
  -- table, after a rollback) passed it over: that step's reconciliation wrote the developer, and
  -- the row is ignored and dropped.
  left_at timestamptz NOT NULL DEFAULT now()
);

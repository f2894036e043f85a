-- Effects that must happen once, after the change that causes them has committed: a job is
-- inserted in the same transaction as that change and worked off by the leader afterwards.
-- Semantics after graphile-worker: run_at for backoff, a lease (locked_until) so a crashed
-- worker's job is picked up again, attempts counted in SQL.
CREATE TABLE stakesync.outbox (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('welcome_email')),
  wallet text NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'skipped', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  run_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  done_at timestamptz,
  -- A developer gets at most one welcome email in their lifetime.
  UNIQUE (kind, wallet)
);
CREATE INDEX outbox_due_idx ON stakesync.outbox (run_at) WHERE state = 'pending';

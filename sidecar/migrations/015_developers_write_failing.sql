-- Whether the queue's developers write is failing as a whole (an application trigger that calls a
-- function it cannot find), while the steps go on: the leader notes every failed try (`failed_at`,
-- the latest error) and deletes the row at the next write that succeeds. `since`: the first
-- failure of the episode. Every sidecar's /ready says so once it has lasted (status.ts), while the
-- last failed try is recent: a row no leader of this version clears (a rollback, then a new
-- deploy) goes stale instead of holding /ready at 503. One row, or none.
CREATE TABLE stakesync.developers_write_failing (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  since timestamptz NOT NULL DEFAULT now(),
  failed_at timestamptz NOT NULL DEFAULT now(),
  last_error text
);

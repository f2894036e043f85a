-- Since when the queue's developers write has failed as a whole (an application trigger that
-- calls a function it cannot find), while the steps go on: the leader notes it at the first
-- failure and clears it at the next write that succeeds; every sidecar's /ready says so once it
-- has lasted (status.ts). One row, or none.
CREATE TABLE stakesync.developers_write_failing (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  since timestamptz NOT NULL DEFAULT now(),
  last_error text
);

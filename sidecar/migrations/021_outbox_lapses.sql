-- The claims of a job that ran out with nothing recorded: its worker was killed, or froze, in the
-- middle of it, each time after the send may have gone out. Such a claim is no failure (a deploy
-- that kills a worker mid-send must not count against the welcome), but a job that keeps ending
-- so (an address whose send crashes the process, a worker OOM-killed at each send) was taken over
-- every 15 minutes for good: another copy of the email each time, and a sidecar lost each time.
-- A take-over by another worker counts one here, a claim that ends with its failure recorded sets
-- it back to 0; at the third in a row the job is dead instead (outbox.ts, LAPSES_AT_MOST), for an
-- operator to retry or discard.
ALTER TABLE stakesync.outbox ADD COLUMN lapses integer NOT NULL DEFAULT 0;

-- Fencing, after graphile-worker: a job is claimed by one worker of one leadership (`locked_by`)
-- for one attempt (`attempts`), and every later write of that job names both. A worker that lost
-- its claim (its lease ran out and another claimed the job, or an operator reset it) changes
-- nothing: it can never turn a sent job back into a pending one.
ALTER TABLE stakesync.outbox ADD COLUMN locked_by text;

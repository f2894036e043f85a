-- The failures that count toward RETRY_ATTEMPTS, apart from the claims (`attempts`, the number
-- the fence names, which only grows). A temporary failure of the SMTP server (a 4xx answer: a
-- rate limit, greylisting, a full queue; or no server reached) is tried again without counting:
-- counted, an outage or a rate limit of about 35 s (the defaults) made a dead letter of every
-- welcome due meanwhile, and a burst of activations after a catch-up lost its welcomes to one.
-- A permanent failure (a 5xx answer) and a send cut off count, as before; so does a temporary one
-- once the job's temporary failures have lasted a day (`deferred_since`: a recipient's server
-- that answers 452 "over quota" for good ends as a dead letter, not retried every minute).
ALTER TABLE stakesync.outbox ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE stakesync.outbox ADD COLUMN deferred_since timestamptz;
-- The jobs there now keep the count they have: every claim that ended was a failure, and a job
-- claimed now is in its claim.
UPDATE stakesync.outbox
   SET failures = CASE WHEN locked_until IS NULL OR state = 'dead' THEN attempts ELSE greatest(attempts - 1, 0) END
 WHERE state IN ('pending', 'dead');

-- The alert rules firing as the leader last reported them to the webhook. A new leader (after a
-- failover or a restart) starts from these rows, so it sends "resolved" for a rule that cleared
-- while it did not lead, instead of leaving the alert open on the receiving end for ever.
CREATE TABLE stakesync.alert_firing (
  rule text PRIMARY KEY,
  severity text NOT NULL,
  text text NOT NULL,
  sent_at timestamptz NOT NULL
);

-- Whether the firing a row records reached the webhook. A leader that stood down drops its
-- firings not yet delivered (a retry after a 502 landed after the next leader's resolved), and the
-- next leader, adopting the row as sent, repeated it only after ALERT_REPEAT_MS: a page never sent
-- for 5 minutes. Adopted undelivered, it is sent at the next check. True for the rows there now
-- (their leaders retried them as before) and where no webhook is configured (the log is the page).
ALTER TABLE stakesync.alert_firing ADD COLUMN delivered boolean NOT NULL DEFAULT true;

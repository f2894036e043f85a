-- When an alert started: /status and the status page showed the time of its last repeat as its
-- "since" (sent_at, rewritten every ALERT_REPEAT_MS), so a page open for hours looked minutes
-- old. The leader writes it with each repeat as it has it (alerts.ts) and a new leader adopts it.
-- NULL in a row written before this column, or by an older sidecar during a rolling deploy:
-- read as its sent_at, the best known.
ALTER TABLE stakesync.alert_firing ADD COLUMN first_at timestamptz;

-- The last correction after a deep reorg, read once a second by the leader's alert rules and at
-- every scrape (status.ts): the page `reorg_correction` follows from these rows, not from what
-- one process remembers (a leader that crashed after its correction lost the page). Rare rows in
-- a table of every change, so a partial index: max(created_at) reads one entry of it.
CREATE INDEX audit_reorg_idx ON stakesync.audit (created_at) WHERE reason = 'reorg';

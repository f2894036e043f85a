-- When a developers row the database refused (a dead letter) is tried again by a reconciliation
-- (apply-developers.ts sets it, reconcile-stakes.ts retryRefused reads it). NULL for entries
-- refused before this column: tried at the next reconciliation.
ALTER TABLE stakesync.developer_queue ADD COLUMN retry_at timestamptz;

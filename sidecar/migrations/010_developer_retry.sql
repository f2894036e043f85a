-- A developers row the database refused (a dead letter) is tried again by the reconciliation
-- once retry_at has passed, the wait doubling with each refusal up to an hour: the row is written
-- by itself once the application's rule is fixed, without an operator retrying each one. NULL
-- for entries refused before this column: tried at the next reconciliation.
ALTER TABLE stakesync.developer_queue ADD COLUMN retry_at timestamptz;

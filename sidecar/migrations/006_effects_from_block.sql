-- Where a first activation's stake is (EFFECTS_FROM_BLOCK compares with it), and why a job was
-- skipped: 'no_email' (nothing to send to) or 'historic' (the stake predates EFFECTS_FROM_BLOCK:
-- a cut-over from another system, whose developers were welcomed already).
ALTER TABLE stakesync.developer_queue ADD COLUMN activated_chain integer, ADD COLUMN activated_block bigint;
ALTER TABLE stakesync.outbox ADD COLUMN skip_reason text CHECK (skip_reason IN ('no_email', 'historic'));

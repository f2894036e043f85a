-- The settings a queued developer's first activation was found under, as in unwritten_developer
-- (013): a look-up under other settings (a deploy that changed MIN_STAKE, STAKE_DECIMALS or
-- CHAINS while the entry waited: an application transaction held the row, or it refused it)
-- replaces it instead of being ignored, and the developers write passes over an entry whose
-- activation was found under other settings until one is found under these. NULL for entries
-- queued before this column: their settings are unknown, and the activation is searched again.
ALTER TABLE stakesync.developer_queue ADD COLUMN activated_for text;

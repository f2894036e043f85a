-- The settings a queued developer's first activation was found under, as in unwritten_developer
-- (013): a look-up under other settings (a deploy that changed MIN_STAKE, STAKE_DECIMALS or
-- CHAINS while the entry waited: an application transaction held the row, or it refused it)
-- replaces it instead of being ignored. NULL for entries queued before this column: kept as
-- before (the first activation found stays), since their settings are unknown.
ALTER TABLE stakesync.developer_queue ADD COLUMN activated_for text;

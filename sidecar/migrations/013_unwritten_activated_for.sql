-- The settings an unwritten developer's activation was found under: the threshold in raw units
-- and the chains summed (unwritten-developers.ts, activationSettings). The step that writes the
-- developer reuses the activation only under the same settings; after a deploy that changed
-- MIN_STAKE, STAKE_DECIMALS or CHAINS it searches Ponder's events again: the crossing may be
-- another stake, and with it staked_at and whether the welcome email predates EFFECTS_FROM_BLOCK.
-- NULL for rows left before this column: searched again too.
ALTER TABLE stakesync.unwritten_developer ADD COLUMN activated_for text;

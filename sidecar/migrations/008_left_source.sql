-- A Ponder instance the sync left (PONDER_REPLICA_SCHEMAS), with each chain's checkpoint and
-- readiness as it showed them then. Its rows go once it has committed on every chain (or shows
-- what the instance read shows there); until then no step reads it: left stalled on a reorg's old fork,
-- it still shows the orphans the sync took back. Kept here, not only in the leader's memory, so
-- a new leader does not read them back in (sidecar/sync/choose-source.ts).
CREATE TABLE stakesync.left_source (
  schema text NOT NULL,
  chain_id integer NOT NULL,
  shown text NOT NULL,
  PRIMARY KEY (schema, chain_id)
);

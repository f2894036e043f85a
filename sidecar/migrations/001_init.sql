-- The sidecar's own bookkeeping. Ponder's tables are read, never written; developers is the
-- application's table (see sidecar/db/developers-table.ts).

-- Per chain: every confirmed event at or below `block` has been applied. Events at or below
-- `final_block` are final on their chain and no longer tracked one by one.
CREATE TABLE stakesync.cursor (
  chain_id integer PRIMARY KEY,
  block bigint NOT NULL,
  final_block bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Confirmed raw net stake per chain and wallet (lowercase hex); developers.stake_amount is
-- their sum in token units. Kept for wallets without a developers row too (stake before signup).
CREATE TABLE stakesync.chain_stake (
  wallet text NOT NULL,
  chain_id integer NOT NULL,
  amount numeric(78, 0) NOT NULL,
  last_block bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (wallet, chain_id)
);

-- Applied events above final_block, diffed against Ponder on every sync: an event that Ponder
-- no longer has (or a new one below the cursor) is a reorg deeper than CONFIRMATIONS.
-- event_key is Ponder's event id and the transaction hash: the id alone (block time, number,
-- positions) can repeat on the other side of a reorg for a different event.
CREATE TABLE stakesync.applied_event (
  chain_id integer NOT NULL,
  event_key text NOT NULL,
  wallet text NOT NULL,
  delta numeric(78, 0) NOT NULL,
  block_number bigint NOT NULL,
  PRIMARY KEY (chain_id, event_key)
);
CREATE INDEX applied_event_block_idx ON stakesync.applied_event (chain_id, block_number);

-- Every change the sidecar made to a developers row, in the same transaction as the change.
CREATE TABLE stakesync.audit (
  id bigserial PRIMARY KEY,
  wallet text NOT NULL,
  old_status text,
  new_status text NOT NULL,
  old_amount numeric,
  new_amount numeric NOT NULL,
  chain_id integer,
  block_number bigint,
  transaction_hash text,
  reason text NOT NULL CHECK (reason IN ('stake', 'reorg', 'registered', 'reconcile')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_wallet_idx ON stakesync.audit (wallet, id);

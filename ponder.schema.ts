import { index, onchainTable, primaryKey } from "ponder";

/** One row per StakeVault event. Column names are snake_case: they are the SQL contract (README "Query it"). */
export const stakeEvent = onchainTable(
  "stake_event",
  (t) => ({
    // Ponder's event.id: 75 digits that sort events in the order they happened (block time,
    // chain, block, position). The sidecar relies on that order.
    id: t.text().primaryKey(),
    chain_id: t.integer().notNull(),
    developer: t.hex().notNull(),
    kind: t.text().$type<"staked" | "unstaked" | "slashed">().notNull(),
    amount: t.bigint().notNull(),
    block_number: t.bigint().notNull(),
    block_timestamp: t.bigint().notNull(),
    transaction_hash: t.hex().notNull(),
    log_index: t.integer().notNull(),
  }),
  (table) => ({
    // The sidecar sums a developer's events up to the confirmed block, and finds what changed
    // in a block range.
    developerIdx: index().on(table.chain_id, table.developer, table.block_number),
    blockIdx: index().on(table.chain_id, table.block_number),
  }),
);

/** Net stake per developer and chain: a running sum of the events, never overwritten. */
export const developerStake = onchainTable(
  "developer_stake",
  (t) => ({
    chain_id: t.integer().notNull(),
    developer: t.hex().notNull(),
    amount: t.bigint().notNull(),
    staked_total: t.bigint().notNull(),
    unstaked_total: t.bigint().notNull(),
    slashed_total: t.bigint().notNull(),
    event_count: t.integer().notNull(),
    first_staked_at: t.bigint(),
    last_event_block: t.bigint().notNull(),
    last_event_at: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chain_id, table.developer] }),
    lastEventIdx: index().on(table.chain_id, table.last_event_block),
  }),
);

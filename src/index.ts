/**
 * StakeVault handlers. They only write Ponder tables: Ponder re-runs them after a reorg or a
 * crash, so any effect outside these tables (emails, the developers table) belongs to the sidecar.
 */
import { type Context, type Event, ponder } from "ponder:registry";
import { developerStake, stakeEvent } from "ponder:schema";

type Kind = "staked" | "unstaked" | "slashed";
type StakeVaultEvent = Event<"StakeVault:Staked"> | Event<"StakeVault:Unstaked"> | Event<"StakeVault:Slashed">;

async function record(kind: Kind, event: StakeVaultEvent, context: Context) {
  const chainId = context.chain.id;
  const developer = event.args.developer.toLowerCase() as `0x${string}`;
  const { amount } = event.args;
  const { number: block, timestamp } = event.block;

  await context.db.insert(stakeEvent).values({
    id: event.id,
    chain_id: chainId,
    developer,
    kind,
    amount,
    block_number: block,
    block_timestamp: timestamp,
    transaction_hash: event.transaction.hash,
    log_index: event.log.logIndex,
  });

  const delta = kind === "staked" ? amount : -amount;
  await context.db
    .insert(developerStake)
    .values({
      chain_id: chainId,
      developer,
      amount: delta,
      staked_total: kind === "staked" ? amount : 0n,
      unstaked_total: kind === "unstaked" ? amount : 0n,
      slashed_total: kind === "slashed" ? amount : 0n,
      event_count: 1,
      first_staked_at: kind === "staked" ? timestamp : null,
      last_event_block: block,
      last_event_at: timestamp,
    })
    .onConflictDoUpdate((row) => ({
      amount: row.amount + delta,
      staked_total: row.staked_total + (kind === "staked" ? amount : 0n),
      unstaked_total: row.unstaked_total + (kind === "unstaked" ? amount : 0n),
      slashed_total: row.slashed_total + (kind === "slashed" ? amount : 0n),
      event_count: row.event_count + 1,
      first_staked_at: row.first_staked_at ?? (kind === "staked" ? timestamp : null),
      last_event_block: block,
      last_event_at: timestamp,
    }));
}

ponder.on("StakeVault:Staked", ({ event, context }) => record("staked", event, context));
ponder.on("StakeVault:Unstaked", ({ event, context }) => record("unstaked", event, context));
ponder.on("StakeVault:Slashed", ({ event, context }) => record("slashed", event, context));

/**
 * The soak's own account of the chain, kept from the transactions it sent and their receipts,
 * never from stakesync's tables: what every developer's stake is at any block, which blocks a
 * reorg took back, and what the developers table must therefore say.
 */
import { type Hash, parseEventLogs, type TransactionReceipt } from "viem";
import { StakeVaultAbi } from "../../abis/StakeVault";

/** `time`: its block's timestamp (s); `at`: when the soak recorded it (ms since the epoch). */
export type ModelEvent = { wallet: string; block: number; time: number; delta: bigint; tx: Hash; at: number };

/** What a revert took back, when, and the block the chain had confirmed just before it. */
type Retraction = { at: number; confirmed: number; events: ModelEvent[] };

/** Every amount a wallet had at some block in [from, to] of the chain `events` describe. */
function amountsIn(events: ModelEvent[], wallet: string, from: number, to: number): Set<bigint> {
  let sum = 0n;
  for (const e of events) if (e.wallet === wallet && e.block <= from) sum += e.delta;
  const amounts = new Set([sum]);
  for (const e of [...events].sort((a, b) => a.block - b.block)) {
    if (e.wallet === wallet && e.block > from && e.block <= to) {
      sum += e.delta;
      amounts.add(sum);
    }
  }
  // Events of one block apply together: the sums between them are not states of the chain,
  // but allowing them loses nothing a test of staleness needs.
  return amounts;
}

/**
 * The block time (s) of the event that first took the wallet's stake above 0 at or below `upTo`,
 * in chain order (the soak sends one transaction at a time, so the order it recorded them in),
 * as stakesync's `staked_at`; undefined when it never was above 0.
 */
function firstActivation(events: ModelEvent[], wallet: string, upTo: number): number | undefined {
  let sum = 0n;
  for (const e of events.filter((x) => x.wallet === wallet && x.block <= upTo).sort((a, b) => a.block - b.block)) {
    sum += e.delta;
    if (sum > 0n) return e.time;
  }
  return undefined;
}

export class ChainModel {
  readonly events: ModelEvent[] = [];
  /**
   * Blocks (from, to] a deep reorg replaced: the heights a `reorg` audit row may name. The new
   * fork's events there are applied late (below the sync's cursor), and are audited `reorg` too.
   */
  readonly deepReorgs: { from: number; to: number }[] = [];
  private readonly retractions: Retraction[] = [];

  /** Records the vault's events in a receipt; `time` is its block's timestamp (s). */
  record(receipt: TransactionReceipt, time: number) {
    for (const log of parseEventLogs({ abi: StakeVaultAbi, logs: receipt.logs })) {
      if (!("developer" in log.args) || !("amount" in log.args)) continue;
      const delta = log.eventName === "Staked" ? log.args.amount : -log.args.amount;
      this.events.push({
        wallet: log.args.developer.toLowerCase(),
        block: Number(receipt.blockNumber),
        time,
        delta,
        tx: receipt.transactionHash,
        at: Date.now(),
      });
    }
  }

  /**
   * The chain was reverted to `block` from `head`, whose confirmed block was `confirmed`: every
   * event above it is gone.
   */
  revertTo(block: number, deep: boolean, head: number, confirmed: number) {
    const removed: ModelEvent[] = [];
    for (let i = this.events.length - 1; i >= 0; i--) {
      if ((this.events[i] as ModelEvent).block > block) removed.push(...this.events.splice(i, 1));
    }
    this.retractions.push({ at: Date.now(), confirmed, events: removed });
    if (deep) this.deepReorgs.push({ from: block, to: head });
  }

  /**
   * The chain just before revert `r`: the events recorded before it that are still there, and
   * those `r` and every later revert took back.
   */
  private before(r: Retraction): ModelEvent[] {
    const later = this.retractions.filter((x) => x.at >= r.at).flatMap((x) => x.events);
    return [...this.events, ...later].filter((e) => e.at < r.at);
  }

  /** A wallet's stake at `block`, in raw units. */
  stakeAt(wallet: string, block: number): bigint {
    let sum = 0n;
    for (const e of this.events) if (e.wallet === wallet && e.block <= block) sum += e.delta;
    return sum;
  }

  /** Every amount a wallet had at some block in [from, to]: a developers row may show any of them. */
  amountsBetween(wallet: string, from: number, to: number): Set<bigint> {
    return amountsIn(this.events, wallet, from, to);
  }

  /**
   * As amountsBetween, and also what the chain showed confirmed just before a revert at or after
   * `since`: a deep reorg changes the confirmed chain at once, and the row may take as long to
   * follow as it may for a block newly confirmed.
   */
  amountsSince(wallet: string, from: number, to: number, since: number): Set<bigint> {
    const amounts = this.amountsBetween(wallet, from, to);
    for (const r of this.retractions) {
      if (r.at < since || r.events.every((e) => e.block > r.confirmed)) continue;
      for (const a of amountsIn(this.before(r), wallet, Math.min(from, r.confirmed), r.confirmed)) amounts.add(a);
    }
    return amounts;
  }

  /**
   * Every `staked_at` a developers row may hold at confirmed block `block` (s; null: none yet):
   * the block time of the first activation on the chain as it is, or, when a deep reorg took that
   * stake back after it was confirmed, on the chain as it was (staked_at is written once). Null
   * is allowed unless the wallet is active at `block`: a row registered after an activation its
   * stake has since lost was never active, and has none.
   */
  stakedAtChoices(wallet: string, block: number): Set<number | null> {
    const choices = new Set<number | null>();
    if (this.stakeAt(wallet, block) <= 0n) choices.add(null);
    const now = firstActivation(this.events, wallet, block);
    if (now !== undefined) choices.add(now);
    for (const r of this.retractions) {
      if (r.events.every((e) => e.block > r.confirmed)) continue;
      const was = firstActivation(this.before(r), wallet, Math.min(block, r.confirmed));
      if (was !== undefined) choices.add(was);
    }
    return choices;
  }
}

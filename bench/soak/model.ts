/**
 * The soak's own account of the chain, kept from the transactions it sent and their receipts,
 * never from stakesync's tables: what every developer's stake is at any block, which blocks a
 * reorg took back, and what the developers table must therefore say.
 */
import { type Hash, parseEventLogs, type TransactionReceipt } from "viem";
import { StakeVaultAbi } from "../../abis/StakeVault";

export type ModelEvent = { wallet: string; block: number; delta: bigint; tx: Hash };

export class ChainModel {
  readonly events: ModelEvent[] = [];
  /** Blocks (from, to] a deep reorg took back: the only heights a `reorg` audit row may name. */
  readonly deepReorgs: { from: number; to: number }[] = [];

  /** Records the vault's events in a receipt. */
  record(receipt: TransactionReceipt) {
    for (const log of parseEventLogs({ abi: StakeVaultAbi, logs: receipt.logs })) {
      if (!("developer" in log.args) || !("amount" in log.args)) continue;
      const delta = log.eventName === "Staked" ? log.args.amount : -log.args.amount;
      this.events.push({
        wallet: log.args.developer.toLowerCase(),
        block: Number(receipt.blockNumber),
        delta,
        tx: receipt.transactionHash,
      });
    }
  }

  /** The chain was reverted to `block`: every event above it is gone. */
  revertTo(block: number, deep: boolean, head: number) {
    for (let i = this.events.length - 1; i >= 0; i--) {
      if ((this.events[i] as ModelEvent).block > block) this.events.splice(i, 1);
    }
    if (deep) this.deepReorgs.push({ from: block, to: head });
  }

  /** A wallet's stake at `block`, in raw units. */
  stakeAt(wallet: string, block: number): bigint {
    let sum = 0n;
    for (const e of this.events) if (e.wallet === wallet && e.block <= block) sum += e.delta;
    return sum;
  }

  /** Every amount a wallet had at some block in [from, to]: a developers row may show any of them. */
  amountsBetween(wallet: string, from: number, to: number): Set<bigint> {
    const amounts = new Set([this.stakeAt(wallet, from)]);
    let sum = amounts.values().next().value as bigint;
    for (const e of this.events) {
      if (e.wallet === wallet && e.block > from && e.block <= to) {
        sum += e.delta;
        amounts.add(sum);
      }
    }
    // Events of one block apply together: the sums between them are not states of the chain,
    // but allowing them loses nothing a test of staleness needs.
    return amounts;
  }

  /** Whether the wallet ever had a positive stake at a block at or below `block`. */
  everActive(wallet: string, block: number): boolean {
    let sum = 0n;
    for (const e of [...this.events].sort((a, b) => a.block - b.block)) {
      if (e.wallet !== wallet || e.block > block) continue;
      sum += e.delta;
      if (sum > 0n) return true;
    }
    return false;
  }
}

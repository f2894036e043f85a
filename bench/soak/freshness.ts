/**
 * Freshness: how long a stake takes from its confirmation to its developers row, per event,
 * measured from the samples: from the first sample whose head (read before the rows) confirms
 * the event's block to the first sample whose row shows the wallet's stake at that block or a
 * later confirmed one. Only events whose wallet had a row when they were confirmed count (a row
 * inserted later is the sync's next round, which availability allows for); an event a deep reorg
 * takes back before its row shows it drops out.
 */
import type { ChainModel, ModelEvent } from "./model";

export class Freshness {
  /** Confirmed events not yet shown, with the sample time that confirmed them. */
  private readonly pending = new Map<ModelEvent, number>();
  private readonly confirmed = new WeakSet<ModelEvent>();
  readonly seconds: number[] = [];

  /** One sample: `rows` wallet → the amount its row shows, `block` the confirmed block, `at` when. */
  observe(model: ChainModel, rows: Map<string, bigint>, block: number, at: number) {
    const live = new Set(model.events);
    for (const e of this.pending.keys()) if (!live.has(e)) this.pending.delete(e);
    for (const e of model.events) {
      if (e.block > block || this.confirmed.has(e)) continue;
      this.confirmed.add(e);
      if (rows.has(e.wallet)) this.pending.set(e, at);
    }
    for (const [e, since] of this.pending) {
      const shown = rows.get(e.wallet);
      if (shown !== undefined && model.amountsBetween(e.wallet, e.block, block).has(shown)) {
        this.seconds.push((at - since) / 1000);
        this.pending.delete(e);
      }
    }
  }
}

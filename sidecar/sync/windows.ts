/**
 * Which chains a step takes, and how far: per chain, the window (lower, target] of Ponder's
 * confirmed events to diff against what was applied. Pure: computed from Ponder's progress, the
 * cursors and the heads, so the rules are tested without a database.
 */
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import type { Cursor } from "./sql/read-cursors";
import type { PonderProgress } from "./sql/read-progress";

export type Window = {
  chainId: number;
  /** The block synced before this step. */
  cursor: number;
  /** Applied events above this block are diffed one by one (the cursor's final block). */
  lower: number;
  /**
   * The confirmed block this step syncs to: Ponder's trusted block minus CONFIRMATIONS. Below the
   * cursor while Ponder is behind it (see `diffTo`): then the cursor stays where it is.
   */
  target: number;
  /**
   * Ponder's events and the applied ones are compared up to here: the target; or, while Ponder is
   * behind the cursor, the lower of its trusted block and the cursor, and the step takes only
   * removals (see planWindows).
   */
  diffTo: number;
  /** Events up to here are final after this step: kept as sums, no longer one by one. */
  finalBlock: number;
  progress: PonderProgress;
  /**
   * Stepped early while Ponder backfills, only to leave less for the step that ends the backfill
   * (a "near-end" catch-up): its developers may wait for that step (unwritten-developers.ts).
   */
  early: boolean;
};

/**
 * While Ponder backfills a chain: "no" leaves it for a later step, "near-end" steps it once the
 * window is NEAR_END of what is left to the head, "due" steps it whatever the window (developers
 * waited CATCH_UP_WAIT_MS). A step near the end leaves little for the step that ends the backfill.
 * It is taken early: it folds the stakes and finds the activations, and leaves its developers to
 * that step (unwritten-developers.ts), which writes nearly every one of them anyway; a due one
 * writes them.
 *
 * Not too near: the step that ends the backfill waits for it. In the bench's cached runs (100,000
 * events), begun at 80 %, the early step took 0.48–0.65 s beside Ponder for 84,000 events and
 * ended after Ponder's last batch in four runs of ten (37–111 ms; bench/results/ab-early.json,
 * ab-early3.json); begun at 70 %, 0.44–0.72 s for 78,000 events, ending 68–270 ms before it in all
 * five (ab-early4.json). Before it was taken early it wrote every developer, took 0.83–1.2 s, and
 * began at 65 %.
 */
export type CatchUp = "no" | "near-end" | "due";
const NEAR_END = 0.7;

export function planWindows(
  config: SidecarConfig,
  progress: Map<number, PonderProgress>,
  cursors: Map<number, Cursor>,
  heads: Map<number, Head>,
  catchUp: CatchUp,
): Window[] {
  return config.chains.flatMap((chain) => {
    const p = progress.get(chain.id);
    const cursor = cursors.get(chain.id);
    if (!p || !cursor) return [];
    const target = p.indexed - chain.confirmations;
    // Every applied event still in the ledger (above the cursor's final block) is compared with
    // Ponder, even when Ponder has finalized past it meanwhile: a deep reorg that happened while
    // no step ran must still be diffed before the ledger forgets those events.
    const lower = cursor.finalBlock;
    if (target < cursor.block) {
      // Ponder behind our cursor: a reorg deeper than CONFIRMATIONS took back blocks we synced, or
      // its provider lags the head (Ponder 0.17 takes an older head for a reorg: it deletes the
      // rows above it and lowers its checkpoint). Once it is ready, its rows up to its own
      // checkpoint are the chain it follows (it commits them with that checkpoint): an applied
      // event missing there is gone from the chain, whichever fork the provider shows, and is
      // taken back now, through the removal guard; its events up to its confirmed block (the
      // target) that were not applied are the new fork's, confirmed, and are added. Not when the
      // new fork has grown past the cursor: CONFIRMATIONS blocks and the reorg's depth later. A
      // lagging provider's blocks come back with the same events: nothing changes. The cursor
      // stays (advance-cursor.ts), so the new fork's events above the target come as it grows.
      const diffTo = Math.min(p.indexed, cursor.block);
      if (!p.ready || diffTo <= lower) return [];
      return [
        {
          chainId: chain.id,
          cursor: cursor.block,
          lower,
          target,
          diffTo,
          finalBlock: lower,
          progress: p,
          early: false,
        },
      ];
    }
    // Ponder backfilling: each step rewrites every developer it touches and competes with Ponder
    // for the machine. Step once the window reaches the head, or once Ponder builds its indexes
    // (its backfill is over: the step runs beside the index build, 0.1–0.2 s before /ready,
    // instead of after it, up to the block before Ponder's checkpoint, which waits for the first
    // step once Ponder is ready (trustedBlock); once: a window with nothing new, stepped at every
    // poll of a long build, would diff it again each time); before, only as the loop allows.
    // A head the cursor has passed says nothing of what is left (a lagging provider, or its last
    // answer before an outage): taken as one at or behind it, every round of the rest of the
    // backfill was a step that wrote its developers beside Ponder's.
    const head = heads.get(chain.id)?.block;
    const ahead = head === undefined ? 0 : head - chain.confirmations - cursor.block;
    const left = ahead > 0 ? ahead : undefined;
    const span = target - cursor.block;
    const reachesHead = left !== undefined && span >= left;
    const nearEnd = left !== undefined && span >= left * NEAR_END;
    const catchUpNow = catchUp === "due" || (catchUp === "near-end" && nearEnd);
    const backfilled = p.indexing && span > 0;
    if (!p.ready && !reachesHead && !catchUpNow && !backfilled) return [];
    const finalBlock = Math.max(cursor.finalBlock, Math.min(p.finalized, target));
    // Only the near-end rule took it: the step that ends the backfill comes soon after and writes
    // nearly every developer again. A due catch-up writes them: developers wait at most
    // CATCH_UP_WAIT_MS in a long backfill.
    const early = !p.ready && !reachesHead && !backfilled && catchUp !== "due";
    return [{ chainId: chain.id, cursor: cursor.block, lower, target, diffTo: target, finalBlock, progress: p, early }];
  });
}

/** Ponder is behind the cursor (see planWindows): the cursor stays, and no reconciliation. */
export function behindCursor(w: Window): boolean {
  return w.target < w.cursor;
}

/**
 * No new confirmed block (or Ponder behind the cursor), no newly final one, and a ready Ponder.
 * Ponder commits its rows with its checkpoint, so in such a window only deletions can differ from
 * what was applied (a reorg's first half: its checkpoint moves only with the next block): the step
 * asks the ledger for them (ledgerMatches) instead of running the whole diff.
 */
export function nothingNew(w: Window): boolean {
  return w.progress.ready && w.target <= w.cursor && w.finalBlock === w.lower;
}

/** Where a chain's events count for a first activation (see confirmedBlocks). */
export type Confirmed = { block: number; applied: number };

/**
 * Per chain, up to where Ponder's events are searched for the stake that first activated a
 * developer: every event up to `block`, the window's target (its cursor if it had no window);
 * and up to `applied`, the events that were applied. While Ponder is behind the cursor those lie
 * above its confirmed block and are still confirmed (Ponder still has them: the two forks share
 * them); the new fork's other events there are not.
 */
export function confirmedBlocks(
  config: SidecarConfig,
  windows: Window[],
  cursors: Map<number, Cursor>,
): Map<number, Confirmed> {
  return new Map(
    config.chains.map((c) => {
      const w = windows.find((x) => x.chainId === c.id);
      const block = w ? w.target : (cursors.get(c.id)?.block ?? c.startBlock - 1);
      return [c.id, { block, applied: w ? Math.max(w.diffTo, block) : block }];
    }),
  );
}

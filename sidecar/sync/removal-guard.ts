/**
 * When an applied event that Ponder no longer has is a reorg, and when it is not yet.
 *
 * Ponder commits a reorg's row deletions without touching `_ponder_checkpoint`; the next block's
 * transaction moves it, with the new fork's rows. In between, its tables lack the orphaned events
 * *and* the new fork's, while the checkpoint still vouches for those blocks. Crash recovery at a
 * restart looks the same (rows gone, checkpoint unchanged), with is_ready 0. So an applied event
 * that Ponder no longer has is a removal only once Ponder is ready and has committed another
 * checkpoint than the one under which that event was first seen missing; until then that chain is
 * left out of the step. Kept per event, not per chain: a first sighting under a checkpoint that
 * differs from another event's sighting confirms nothing (two lags of the provider in a row, the
 * second seen only in its first half, would otherwise take back an event still on the chain). No
 * timer: a slow restart can outlast any. Pure: the fast tier tests it without a database.
 */
import type { Window } from "./windows";

/**
 * Chain id → the key of each applied event missing from Ponder → the checkpoint under which it
 * was first seen missing. Kept by the loop across steps.
 */
export type RemovalGuard = Map<number, Map<string, string>>;

/**
 * A removal seen before a chain went without a window (Ponder not ready while behind the cursor,
 * behind the cursor's final block, or backfilling) must be seen again, and confirmed afresh, once
 * it has one.
 */
export function forgetChainsWithoutWindow(guard: RemovalGuard, windows: Window[]) {
  for (const chainId of guard.keys()) if (!windows.some((w) => w.chainId === chainId)) guard.delete(chainId);
}

/**
 * The chains whose removals must wait, from the keys of the applied events each window's diff
 * found missing; notes first sightings in `guard`.
 */
export function deferRemovals(guard: RemovalGuard, windows: Window[], removed: Map<number, string[]>): number[] {
  return windows
    .filter((w) => {
      const keys = removed.get(w.chainId) ?? [];
      if (keys.length === 0) {
        guard.delete(w.chainId);
        return false;
      }
      // Not ready: a restart's crash recovery (or a backfill) is under way; nothing it shows is
      // a reorg yet. Ready: each missing event is confirmed by a checkpoint other than the one
      // it was first missed under; one seen for the first time holds back the chain's others.
      if (!w.progress.ready) {
        guard.delete(w.chainId);
        return true;
      }
      const seen = guard.get(w.chainId) ?? new Map<string, string>();
      const now = w.progress.checkpoint;
      if (keys.every((key) => seen.has(key) && seen.get(key) !== now)) {
        guard.delete(w.chainId);
        return false;
      }
      // Events no longer missing are forgotten: missing again later, they are first sightings.
      guard.set(w.chainId, new Map(keys.map((key) => [key, seen.get(key) ?? now])));
      return true;
    })
    .map((w) => w.chainId);
}

/**
 * When an applied event that Ponder no longer has is a reorg, and when it is not yet.
 *
 * Ponder commits a reorg's row deletions without touching `_ponder_checkpoint`; the next block's
 * transaction moves it, with the new fork's rows. In between, its tables lack the orphaned events
 * *and* the new fork's, while the checkpoint still vouches for those blocks. Crash recovery at a
 * restart looks the same (rows gone, checkpoint unchanged), with is_ready 0. So an applied event
 * that Ponder no longer has is a removal only once Ponder is ready and its checkpoint has moved
 * since the removal was first seen; until then that chain is left out of the step. No timer:
 * a slow restart can outlast any. Pure: the fast tier tests it without a database.
 */
import type { Window } from "./windows";

/** Chain id → the checkpoint under which the removal was seen. Kept by the loop across steps. */
export type RemovalGuard = Map<number, { checkpoint: string }>;

/**
 * A removal seen before a chain went without a window (Ponder lowered its checkpoint below the
 * cursor) must be seen again, and confirmed afresh, once it has one.
 */
export function forgetChainsWithoutWindow(guard: RemovalGuard, windows: Window[]) {
  for (const chainId of guard.keys()) if (!windows.some((w) => w.chainId === chainId)) guard.delete(chainId);
}

/** The chains whose removals (per chain, from the diff) must wait; notes first sightings in `guard`. */
export function deferRemovals(
  guard: RemovalGuard,
  windows: Window[],
  counts: Map<number, { removed: number }>,
): number[] {
  return windows
    .filter((w) => {
      if ((counts.get(w.chainId)?.removed ?? 0) === 0) {
        guard.delete(w.chainId);
        return false;
      }
      // Not ready: a restart's crash recovery (or a backfill) is under way; nothing it shows is
      // a reorg yet. Ready: the first sighting notes the checkpoint, a later one confirms.
      if (!w.progress.ready) {
        guard.delete(w.chainId);
        return true;
      }
      const seen = guard.get(w.chainId);
      if (seen !== undefined && seen.checkpoint !== w.progress.checkpoint) {
        guard.delete(w.chainId);
        return false;
      }
      if (seen === undefined) guard.set(w.chainId, { checkpoint: w.progress.checkpoint });
      return true;
    })
    .map((w) => w.chainId);
}

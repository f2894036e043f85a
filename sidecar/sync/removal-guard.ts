/**
 * When an applied event that Ponder no longer has is a reorg, and when it is not yet.
 *
 * Ponder commits a reorg's row deletions without touching `_ponder_checkpoint`; the next block's
 * transaction moves it, with the new fork's rows. In between, its tables lack the orphaned events
 * *and* the new fork's, while the checkpoint still vouches for those blocks. Crash recovery at a
 * restart looks the same (rows gone, checkpoint unchanged), with is_ready 0. So an applied event
 * that Ponder no longer has is a removal only once Ponder is ready and has committed another
 * checkpoint than the one under which that event was first seen missing; until then it waits (see
 * Deferral). Kept per event, not per chain: a first sighting under a checkpoint that differs from
 * another event's sighting confirms nothing (two lags of the provider in a row, the second seen
 * only in its first half, would otherwise take back an event still on the chain). What it cannot
 * tell apart: the same event missing in the first halves of two lags or reorgs, with every state
 * in which it was back unseen by any step. A failed round, and every new term as leader,
 * therefore clear the guard (loop.ts); a slow round can still miss them. No timer: a slow
 * restart can outlast any. Pure: the fast tier tests it without a database.
 */
import { behindCursor, type Window } from "./windows";

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
 * `chains`: left out of the step, their removals wait. `held`: in a window behind the cursor
 * (where the cursor stays), just the events seen missing for the first time wait, with the
 * chain's additions, and the others are taken: a deep reorg's orphans leave one block of the new
 * fork after they were first missed, not all together once it reaches the cursor.
 */
export type Deferral = { chains: number[]; held: { chainId: number; keys: string[] }[] };

/**
 * What must wait, from the keys of the applied events each window's diff found missing; notes
 * first sightings in `guard`.
 */
export function deferRemovals(guard: RemovalGuard, windows: Window[], removed: Map<number, string[]>): Deferral {
  const deferral: Deferral = { chains: [], held: [] };
  for (const w of windows) {
    const keys = removed.get(w.chainId) ?? [];
    if (keys.length === 0) {
      guard.delete(w.chainId);
      continue;
    }
    // Not ready: a restart's crash recovery (or a backfill) is under way; nothing it shows is
    // a reorg yet. Ready: each missing event is confirmed by a checkpoint other than the one
    // it was first missed under.
    if (!w.progress.ready) {
      guard.delete(w.chainId);
      deferral.chains.push(w.chainId);
      continue;
    }
    const seen = guard.get(w.chainId) ?? new Map<string, string>();
    const now = w.progress.checkpoint;
    const fresh = keys.filter((key) => !seen.has(key) || seen.get(key) === now);
    if (fresh.length === 0) {
      guard.delete(w.chainId);
      continue;
    }
    if (behindCursor(w)) {
      guard.set(w.chainId, new Map(fresh.map((key) => [key, now])));
      deferral.held.push({ chainId: w.chainId, keys: fresh });
      continue;
    }
    // Elsewhere a first sighting holds back the chain's others: the step would add the new
    // fork's events and move the cursor past events whose removal is not settled. Events no
    // longer missing are forgotten: missing again later, they are first sightings.
    guard.set(w.chainId, new Map(keys.map((key) => [key, seen.get(key) ?? now])));
    deferral.chains.push(w.chainId);
  }
  return deferral;
}

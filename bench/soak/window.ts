/**
 * Which confirmed blocks a developers row may show at a sample: any block the chain confirmed in
 * the last 5 s (FRESH_MS), up to the one confirmed when the rows were read.
 */

/** The head as the soak sampled it, in time order. */
export type HeadSample = { at: number; head: number };

/** How long a row may lag a newly confirmed block. */
export const FRESH_MS = 5000;

/** The head last sampled at or before `at` (the first sample's before any). */
export function headAt(heads: HeadSample[], at: number): number {
  let found = heads[0]?.head ?? 0;
  for (const h of heads) if (h.at <= at) found = h.head;
  return found;
}

/**
 * [from, to]: `to` is the block confirmed when the rows were read (the head sampled at `now`, or
 * `after`, read after the rows, whichever is higher: a block mined in between may be applied
 * already). `from` is the lowest block confirmed at any time in the last FRESH_MS, so every block
 * confirmed since counts as new: after a revert the head is lower than 5 s ago, and the new
 * fork's blocks confirmed since the revert are as new as any (taking the head of 5 s ago gave
 * them no time at all: the soak, a stake just after a deep reorg counted stale at once).
 */
export function freshWindow(
  heads: HeadSample[],
  now: number,
  after: number,
  confirmations: number,
): { from: number; to: number } {
  const to = Math.max(headAt(heads, now), after) - confirmations;
  const lowest = Math.min(
    headAt(heads, now - FRESH_MS),
    ...heads.filter((h) => h.at > now - FRESH_MS && h.at <= now).map((h) => h.head),
  );
  return { from: Math.max(0, Math.min(lowest - confirmations, to)), to };
}

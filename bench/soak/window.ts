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

/** A revert of the chain to `base` (its blocks above base gone), at `at`. */
export type RevertSample = { at: number; base: number };

/**
 * [from, to]: `to` is the highest block confirmed in the last FRESH_MS that the chain still has:
 * the one confirmed when the rows were read (the head sampled at `now`, or `after`, read after
 * the rows, whichever is higher: a block mined in between may be applied already), or one a
 * higher head confirmed before a revert, when the revert left it (at most its base). A sync that
 * applied a block just before a one-block revert shows a state the chain still has, though the
 * head that confirmed it is gone (the soak, seed 4: counted stale for 1.75 s). `from` is the
 * lowest block confirmed at any time in the last FRESH_MS, so every block confirmed since counts
 * as new: after a revert the head is lower than 5 s ago, and the new fork's blocks confirmed
 * since the revert are as new as any (taking the head of 5 s ago gave them no time at all: the
 * soak, a stake just after a deep reorg counted stale at once).
 */
export function freshWindow(
  heads: HeadSample[],
  now: number,
  after: number,
  confirmations: number,
  reverts: RevertSample[] = [],
): { from: number; to: number } {
  const recent = heads.filter((h) => h.at > now - FRESH_MS && h.at <= now);
  const stillThere = (h: HeadSample) =>
    Math.min(h.head - confirmations, ...reverts.filter((r) => r.at >= h.at && r.at <= now).map((r) => r.base));
  const to = Math.max(Math.max(headAt(heads, now), after) - confirmations, ...recent.map(stillThere));
  const lowest = Math.min(headAt(heads, now - FRESH_MS), ...recent.map((h) => h.head));
  return { from: Math.max(0, Math.min(lowest - confirmations, to)), to };
}

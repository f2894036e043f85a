/** Every retry in stakesync waits `delayMs` × 2^(n−1) after the n-th failure in a row, at most a minute. */
export const MAX_BACKOFF_MS = 60_000;

export function backoffMs(delayMs: number, failures: number): number {
  return Math.min(delayMs * 2 ** (Math.max(1, failures) - 1), MAX_BACKOFF_MS);
}

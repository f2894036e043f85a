/** The figures' arithmetic: seconds, rates, medians of repeated runs, latency percentiles. */
export const seconds = (ms: number) => Math.round(ms) / 1000;
export const perSecond = (events: number, s: number) => Math.round(events / s);

type Timed = { seconds: number; peakMb?: number; ponderPeakMb?: number; sidecarPeakMb?: number };

/**
 * A 2-core machine shared with other work varies by a second from run to run: each backfill
 * runs `repeat` times; the figure is the run with the median time, its peak memory the highest
 * seen, and every run's time is kept.
 */
export function medianOf<T extends Timed>(runs: T[]): T & { runsSeconds: number[] } {
  const peak = (key: "peakMb" | "ponderPeakMb" | "sidecarPeakMb") =>
    runs[0]?.[key] === undefined ? {} : { [key]: Math.max(...runs.map((r) => r[key] ?? 0)) };
  const middle = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)] as T;
  return {
    ...middle,
    ...peak("peakMb"),
    ...peak("ponderPeakMb"),
    ...peak("sidecarPeakMb"),
    runsSeconds: runs.map((r) => r.seconds),
  };
}

/**
 * Where a run's CPU went, in seconds, read as it ends: each process's own, and PostgreSQL's
 * server processes since `postgresBefore` (every client's backend: Ponder's, the sidecar's, the
 * bench's own checks, autovacuum). Two cores for a run of s seconds give at most 2·s.
 */
export function cpuSplit(
  processes: Record<string, number | undefined>,
  postgres: { cpuSeconds: () => number | undefined },
  postgresBefore: number | undefined,
): Record<string, number> {
  const now = postgres.cpuSeconds();
  const all = {
    ...processes,
    postgres: now === undefined || postgresBefore === undefined ? undefined : now - postgresBefore,
  };
  return Object.fromEntries(
    Object.entries(all).flatMap(([k, v]) => (v === undefined ? [] : [[k, Math.round(v * 100) / 100]])),
  );
}

export function percentile(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** p50, p95, p99 and max of sorted milliseconds, rounded. */
export const summary = (values: number[]) => ({
  p50: Math.round(percentile(values, 50)),
  p95: Math.round(percentile(values, 95)),
  p99: Math.round(percentile(values, 99)),
  max: Math.round(values.at(-1) ?? Number.NaN),
});

/**
 * Each run of (a) against the run of (b) it took turns with, (a)'s seconds over (b)'s, in the order
 * they ran: the cached goal asks it of every pair, not only of the medians.
 */
export function pairRatios(a: number[], b: number[]): number[] {
  return b.slice(0, a.length).map((full, i) => round2((a[i] as number) / full));
}

/**
 * What the machine alone makes of a pair: each run of (a) against the next run of (a), the same
 * code a run apart, the lower of the two ways round. A pair of (a) and (b) below these says
 * nothing about the sidecar (on this 2-core machine, a fifth of them were below 0.9 in fourteen
 * runs of 2026-12-05 and -06: docs/performance.md).
 */
export function noiseRatios(a: number[]): number[] {
  return a.slice(1).map((next, i) => round2(Math.min(next / (a[i] as number), (a[i] as number) / next)));
}

const round2 = (x: number) => Math.round(x * 100) / 100;

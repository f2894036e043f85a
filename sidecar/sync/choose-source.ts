/**
 * Which Ponder instance a step reads, when PONDER_REPLICA_SCHEMAS names more than one: decided
 * before each step by `followSource`, from every instance's progress (sql/read-sources.ts), with
 * the rules in `chooseSource`, pure and tested without a database (test/fast/windows.test.ts).
 *
 * Every instance indexes the same chains into its own schema, and Ponder's event ids and
 * transaction hashes come from the chain, so an event has the same key in each: the ledger of
 * applied events holds whichever instance it was read from, and a switch reads on where the
 * cursor is. What differs is each instance's progress and its own crash recoveries and reorg
 * halves, which is why the removal guard starts afresh on a switch (see step.ts).
 *
 * Sticky: the step stays with the instance it reads while that one is ready and not behind. A
 * killed or frozen Ponder keeps is_ready 1 and a checkpoint that no longer moves; a restarted one
 * shows is_ready 0 while it recovers; one behind a slow or failing RPC falls behind. Each of those
 * hands over to a ready instance; two healthy ones a block apart do not flap.
 *
 * Behind means behind the highest block the instance read has shown since the step came to it
 * (its `Peak`), not its checkpoint now: a reorg lowers the checkpoint of the instance that follows
 * it first, until the new fork's blocks are in, while the other still shows the old fork. Leaving
 * it then (and coming back once the other follows the same reorg) started the removal guard
 * afresh twice, and a deep reorg's orphan stayed 8 s instead of 2 (the soak). The cost: an
 * instance that stalls inside a reorg, or whose provider starts lagging (Ponder takes the older
 * head for a reorg and lowers its checkpoint too), is left only once the other is
 * SWITCH_AHEAD_BLOCKS past that peak, a reorg's depth later than before; in between the step
 * stays behind the cursor and applies nothing new.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import type { RemovalGuard } from "./removal-guard";
import type { PonderProgress } from "./sql/read-progress";
import { readSources } from "./sql/read-sources";

/** What one instance shows: its schema, and its progress (null: its tables are not there). */
export type Source = { schema: string; progress: Map<number, PonderProgress> | null };

/**
 * Chain id → the highest block the instance read has indexed since the step came to it. Kept by
 * the loop; started afresh on a switch and with every term as leader.
 */
export type Peak = Map<number, number>;

/**
 * How far ahead, on some chain, a ready instance must be of the one read before the step
 * switches: Ponder commits block by block, so a healthy instance trails another by at most one.
 */
export const SWITCH_AHEAD_BLOCKS = 2;

export function chooseSource(
  config: Pick<SidecarConfig, "chains">,
  current: string,
  sources: Source[],
  peak: Peak = new Map(),
): string {
  const ready = (s: Source) => s.progress !== null && config.chains.every((c) => s.progress?.get(c.id)?.ready === true);
  const indexed = (s: Source, chainId: number) => s.progress?.get(chainId)?.indexed ?? -1;
  const now = sources.find((s) => s.schema === current);
  // The one read stands at its peak: a checkpoint lowered by a reorg is not falling behind.
  const height = (s: Source, chainId: number) =>
    s === now ? Math.max(indexed(s, chainId), peak.get(chainId) ?? -1) : indexed(s, chainId);
  // b is ahead of a: SWITCH_AHEAD_BLOCKS on some chain, and on none more than a block behind (with
  // several chains, a stalled chain of a must not wait for b to lead on every other chain too).
  const ahead = (b: Source, a: Source, by: number) =>
    config.chains.every((c) => indexed(b, c.id) >= height(a, c.id) - (by - 1)) &&
    config.chains.some((c) => indexed(b, c.id) >= height(a, c.id) + by);
  const others = sources.filter((s) => s !== now && ready(s));
  // Never both ways at once (b ≥ a + 2 somewhere and a ≥ b − 1 everywhere cannot both hold), so
  // no flapping: each switch starts the removal guard afresh, and flapping would defer a reorg
  // forever. Two instances each stalled on another chain are neither ahead: the step stays.
  if (now && ready(now)) return others.find((s) => ahead(s, now, SWITCH_AHEAD_BLOCKS))?.schema ?? current;
  // The one read is not ready (recovering, backfilling, gone): the furthest ready one, if any.
  const total = (s: Source) => config.chains.reduce((sum, c) => sum + indexed(s, c.id), 0);
  const best = others.reduce<Source | undefined>((b, s) => (b === undefined || total(s) > total(b) ? s : b), undefined);
  return best?.schema ?? current;
}

/**
 * Before a step: the config whose ponderSchema is the instance to read, `current` the one read
 * before. A removal noted under one instance's checkpoint says nothing about another's rows (they may be
 * in a reorg's first half or a crash recovery of their own): on a switch the guard starts afresh,
 * and so does the peak. Recorded before the step runs, so a step that fails after a switch cannot
 * leave the guard with the other instance's checkpoint.
 */
export async function followSource(
  db: pg.ClientBase,
  config: SidecarConfig,
  current: string,
  guard: RemovalGuard,
  peak: Peak,
): Promise<SidecarConfig> {
  if (config.ponderReplicaSchemas.length === 0) return config;
  const sources = await readSources(db, [config.ponderSchema, ...config.ponderReplicaSchemas]);
  const schema = chooseSource(config, current, sources, peak);
  if (schema !== current) {
    guard.clear();
    peak.clear();
  }
  for (const [chainId, p] of sources.find((s) => s.schema === schema)?.progress ?? []) {
    peak.set(chainId, Math.max(peak.get(chainId) ?? -1, p.indexed));
  }
  return schema === config.ponderSchema ? config : { ...config, ponderSchema: schema };
}

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
 * (its peak), not its checkpoint now: a reorg lowers the checkpoint of the instance that follows
 * it first, until the new fork's blocks are in, while the other still shows the old fork. Leaving
 * it then (and coming back once the other follows the same reorg) started the removal guard
 * afresh twice, and a deep reorg's orphan stayed 8 s instead of 2 (the soak).
 *
 * The peak's cost is the other way round: the instance read can stall at its head inside a reorg
 * (Ponder 0.17.7 retries, for seconds, the logs of a block the reorg took away, and commits
 * nothing meanwhile), and the other, which followed the reorg, is below that peak while it
 * climbs the new fork: a deep reorg's orphan stayed 8 s (the soak, seed 2). So the step also
 * leaves the one read for another that came down (followed a reorg) and has since committed
 * SWITCH_AHEAD_BLOCKS blocks, each while the one read committed none: counted by commits, not
 * heights, because the heights say the opposite. Two healthy instances both commit every block,
 * so neither gets there in step; one that fell from where the one read already fell from (the
 * same reorg, followed second), the one read following the same reorg, or the other climbing
 * back to its peak, ends the count (see `noteCommits`). A second reorg from the same height
 * within one term is not counted (the one read already fell from there): that one waits for the
 * height rule, as before the count. The cost: an instance whose provider lags
 * (Ponder takes the older head for a reorg) and then catches up two blocks between two of the
 * one read's commits is read until the one read commits again, and the removal guard starts
 * afresh twice; the rows stay right, since the step reads no further than that instance's
 * checkpoint.
 *
 * An instance the step left is not read again until, on every chain the sidecar syncs where it
 * showed something else than the instance read then, it has committed (or its readiness changed)
 * since: left stalled on a reorg's old fork, it still shows the orphan the step took back, and is
 * "ahead" of the new fork. The same holds for every other instance above the block the one read
 * comes down to when it follows a reorg: within a term the peak keeps them out, but not across a
 * new term or while the one read restarts. And, after a step that took events back (a reorg the
 * one read followed between two reads, never seen coming down), every other instance above that
 * step's window (leaveOnTakeBack). While the one read is not usable either, the step reads
 * another that was not left, ready or not (one not ready is read only up to its safe
 * checkpoint), rather than the one left. That record (`Watch.left`) is kept in
 * stakesync.left_source, so a new leader, which starts at the first instance knowing nothing of
 * the reorg, does not read the orphan back in either.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import { type Durability, keepDurable } from "./durable-ponder";
import type { RemovalGuard } from "./removal-guard";
import { readLeftSources } from "./sql/read-left-sources";
import type { PonderProgress } from "./sql/read-progress";
import { readSources } from "./sql/read-sources";
import { writeLeftSource } from "./sql/write-left-source";

/** What one instance shows: its schema, and its progress (null: its tables are not there). */
export type Source = { schema: string; progress: Map<number, PonderProgress> | null };

/** Chain id → an instance's checkpoint and readiness on it, as `${checkpoint}:${ready}`. */
export type Commits = Map<number, string>;

/**
 * What the step has seen of the instances. Kept by the loop. `peak` and `followed` start afresh
 * on a switch; everything with every term as leader, `left` then read back from the database.
 */
export type Watch = {
  /** Chain id → the highest block the instance read has indexed since the step came to it. */
  peak: Map<number, number>;
  /** Schema → chain id → that instance's progress when last read (kept while it is absent). */
  last: Map<string, Map<number, PonderProgress>>;
  /** Schema → chain id → the block that instance last came down from (followed a reorg). */
  fell: Map<string, Map<number, number>>;
  /**
   * Schema → chain id → for another instance that came down on that chain while the one read did
   * not: blocks it has committed since, each while the one read committed none.
   */
  followed: Map<string, Map<number, number>>;
  /**
   * Schema → for an instance the step left, the chains on which it has neither committed since
   * nor shown what the one read shows, with what it showed then.
   */
  left: Map<string, Commits>;
};

export const newWatch = (left: Map<string, Commits> = new Map()): Watch => ({
  peak: new Map(),
  last: new Map(),
  fell: new Map(),
  followed: new Map(),
  left,
});

/**
 * What an instance shows on each chain the sidecar syncs: it changes with any block it commits,
 * and when a restart ends.
 */
export const commitsOf = (config: Pick<SidecarConfig, "chains">, s: Source): Commits =>
  new Map(
    config.chains.flatMap((c) => {
      const p = s.progress?.get(c.id);
      return p ? [[c.id, `${p.checkpoint}:${p.ready}`] as const] : [];
    }),
  );

/**
 * How far ahead, on some chain, a ready instance must be of the one read before the step
 * switches: Ponder commits block by block, so a healthy instance trails another by at most one.
 * Also the blocks another must commit, after following a reorg, while the one read commits none.
 */
export const SWITCH_AHEAD_BLOCKS = 2;

export function chooseSource(
  config: Pick<SidecarConfig, "chains">,
  current: string,
  sources: Source[],
  watch: Watch = newWatch(),
): string {
  const { peak } = watch;
  // Ready, and not left with a chain on which it has committed nothing since.
  const usable = (s: Source) =>
    s.progress !== null &&
    config.chains.every((c) => s.progress?.get(c.id)?.ready === true) &&
    !watch.left.has(s.schema);
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
  // A reorg the one read has not followed: b has committed the new fork's blocks while the one
  // read committed none, and on every other chain b is at most a block behind.
  const followedReorg = (b: Source, a: Source) =>
    config.chains.some(
      (c) =>
        (watch.followed.get(b.schema)?.get(c.id) ?? 0) >= SWITCH_AHEAD_BLOCKS &&
        config.chains.every((d) => d.id === c.id || indexed(b, d.id) >= height(a, d.id) - 1),
    );
  const others = sources.filter((s) => s !== now && usable(s));
  // No flapping, since each switch starts the removal guard afresh and flapping would defer a
  // reorg forever. By height: never both ways at once (b ≥ a + 2 somewhere and a ≥ b − 1
  // everywhere cannot both hold); two instances each stalled on another chain are neither ahead,
  // and the step stays. By commits: the one left must commit before it is read again.
  if (now && usable(now)) {
    const next = others.find((s) => ahead(s, now, SWITCH_AHEAD_BLOCKS)) ?? others.find((s) => followedReorg(s, now));
    return next?.schema ?? current;
  }
  // The one read is not ready (recovering, backfilling, gone), or a new term starts at one left:
  // the furthest usable one; failing that, never one left: the furthest other one not left.
  const total = (s: Source) => config.chains.reduce((sum, c) => sum + indexed(s, c.id), 0);
  const furthest = (among: Source[]) =>
    among.reduce<Source | undefined>((b, s) => (b === undefined || total(s) > total(b) ? s : b), undefined);
  const best =
    furthest(others) ??
    (watch.left.has(current) ? furthest(sources.filter((s) => !watch.left.has(s.schema))) : undefined);
  return best?.schema ?? current;
}

/**
 * Before `chooseSource`: what each instance committed since it was last read, against the one
 * read (`current`). Another instance's count starts when its checkpoint comes down (it follows
 * a reorg) from above where the one read last came down from, and goes up with each block it
 * commits while the one read commits none; it starts over when the one read commits, and ends
 * when the one read comes down too (it follows the same reorg), when the other climbs back to
 * the one read's height (the height rule's business from there) or when the other is not ready.
 * Sampled once a step (and a step follows every commit's NOTIFY): commits missed between two
 * reads count as one, and a commit of the one read shows in the next read that finds it, so a
 * sample can only count too little. Returns the schemas no longer left, and those left now
 * because the one read came down below them (one may be both: `follow` keeps it left).
 */
export function noteCommits(
  config: Pick<SidecarConfig, "chains">,
  watch: Watch,
  current: string,
  sources: Source[],
): { moved: string[]; newlyLeft: { schema: string; commits: Commits }[] } {
  const read = sources.find((s) => s.schema === current)?.progress;
  const before = watch.last.get(current);
  const fell = (schema: string) => watch.fell.get(schema) ?? watch.fell.set(schema, new Map()).get(schema);
  /**
   * Chain id → the block the one read came down to in this read, ready: it follows a reorg (one
   * not ready is read up to its safe checkpoint, which a crash recovery also lowers).
   */
  const cameDown = new Map<number, number>();
  for (const [chainId, r] of read ?? []) {
    const rBefore = before?.get(chainId);
    if (rBefore && r.indexed < rBefore.indexed) {
      fell(current)?.set(chainId, rBefore.indexed);
      if (r.ready && rBefore.ready) cameDown.set(chainId, r.indexed);
    }
  }
  for (const source of sources) {
    if (source.schema === current) continue;
    const counts = watch.followed.get(source.schema) ?? new Map<number, number>();
    watch.followed.set(source.schema, counts);
    const last = watch.last.get(source.schema);
    for (const [chainId, now] of source.progress ?? []) {
      const r = read?.get(chainId);
      const rBefore = before?.get(chainId);
      const then = last?.get(chainId);
      const height = Math.max(r?.indexed ?? -1, watch.peak.get(chainId) ?? -1);
      const came = then !== undefined && now.indexed < then.indexed;
      if (came) fell(source.schema)?.set(chainId, then.indexed);
      // Fallen from no higher than the one read already fell from: the same reorg, followed second.
      const second = came && (watch.fell.get(current)?.get(chainId) ?? -1) >= then.indexed;
      const over = !now.ready || (r && rBefore && r.indexed < rBefore.indexed) || now.indexed >= height;
      if (over || second) counts.delete(chainId);
      else if (came) counts.set(chainId, 0);
      else if (counts.has(chainId) && r && rBefore && r.checkpoint !== rBefore.checkpoint) counts.set(chainId, 0);
      else if (counts.has(chainId) && then && now.checkpoint !== then.checkpoint)
        counts.set(chainId, (counts.get(chainId) ?? 0) + 1);
    }
    for (const chainId of counts.keys()) if (!source.progress?.has(chainId)) counts.delete(chainId);
  }
  const moved: string[] = [];
  for (const source of sources) {
    if (source.progress) watch.last.set(source.schema, source.progress);
    const left = watch.left.get(source.schema);
    // An absent one (its locks held, its tables gone) shows nothing to go by.
    if (!left || !source.progress) continue;
    const shows = commitsOf(config, source);
    // Committed, or no longer shown: nothing left behind on that chain. Not "shows what the one
    // read shows": a block's checkpoint is its time, chain and number, the same on both forks of a
    // chain whose block times follow from the height, and the one left, still on the old fork,
    // was read again once the other had climbed the new fork to its height.
    for (const [chainId, was] of left) if (shows.get(chainId) !== was) left.delete(chainId);
    if (left.size === 0) {
      watch.left.delete(source.schema);
      moved.push(source.schema);
    }
  }
  // The one read came down (it follows a reorg): another still above where it came down to shows
  // the old fork there, or has followed the reorg first. Left until it commits again: else a new
  // term (the peak starts afresh) or the one read not ready read the orphans back from it, stalled
  // on the old fork, as Ponder 0.17.7 stalls inside a reorg. Costs the other a block at most.
  const newlyLeft: { schema: string; commits: Commits }[] = [];
  if (cameDown.size > 0) {
    for (const source of sources) {
      if (source.schema === current || !source.progress) continue;
      const left = leaveAbove(config, watch, source.schema, source.progress, cameDown);
      if (left) newlyLeft.push(left);
    }
  }
  return { moved, newlyLeft };
}

/**
 * Leaves `schema` (showing `progress`) on each chain of `above` where it shows a block above the
 * one given, with what it shows there: only on those chains (on another, one without new blocks,
 * it would wait for a block). Returns its record if that changed it.
 */
function leaveAbove(
  config: Pick<SidecarConfig, "chains">,
  watch: Watch,
  schema: string,
  progress: Map<number, PonderProgress>,
  above: Map<number, number>,
): { schema: string; commits: Commits } | undefined {
  const shows = commitsOf(config, { schema, progress });
  const commits: Commits = new Map(
    [...above].flatMap(([chainId, block]) => {
      const c = shows.get(chainId);
      return c !== undefined && (progress.get(chainId)?.indexed ?? -1) > block ? [[chainId, c] as const] : [];
    }),
  );
  if (commits.size === 0) return undefined;
  const left = watch.left.get(schema) ?? new Map();
  for (const [chainId, c] of commits) left.set(chainId, c);
  watch.left.set(schema, left);
  return { schema, commits: new Map(left) };
}

/**
 * After a step that took applied events back: the one read followed a reorg, whether or not a
 * read saw its checkpoint come down (noteCommits). Every other instance that showed a block
 * above the step's window on that chain, at the read before that step, may show the orphan
 * still: left on that chain with what it showed then, until it has committed since (the next
 * read clears it if it already has). Unnoted, one stalled on the old fork was read again at the
 * next switch, or by a new term, and put the orphan back. Returns the records that changed.
 */
export function leaveOnTakeBack(
  config: Pick<SidecarConfig, "chains">,
  watch: Watch,
  current: string,
  chains: { chainId: number; from: number; removed: number }[],
): { schema: string; commits: Commits }[] {
  const changed: { schema: string; commits: Commits }[] = [];
  const took = new Map(chains.filter((c) => c.removed > 0).map((c) => [c.chainId, c.from]));
  if (took.size === 0) return changed;
  for (const [schema, progress] of watch.last) {
    if (schema === current) continue;
    const left = leaveAbove(config, watch, schema, progress, took);
    if (left) changed.push(left);
  }
  return changed;
}

/** leaveOnTakeBack, its records written: in the step's transaction (step.ts onTakeBack), so that they commit with what it took back. */
export async function noteTakenBack(
  db: pg.ClientBase,
  config: SidecarConfig,
  watch: Watch,
  current: string,
  chains: { chainId: number; from: number; removed: number }[],
) {
  if (config.ponderReplicaSchemas.length === 0) return;
  for (const l of leaveOnTakeBack(config, watch, current, chains)) await writeLeftSource(db, l.schema, l.commits);
}

/**
 * What an instance left is recorded with: its commits on the chains where it shows something
 * else than `readShows` (the instance read from then on). On a chain where both show the same,
 * there is nothing to wait for.
 */
function leftCommits(config: Pick<SidecarConfig, "chains">, source: Source, readShows: Commits): Commits {
  return new Map([...commitsOf(config, source)].filter(([chainId, c]) => readShows.get(chainId) !== c));
}

/**
 * The decision of `followSource` without the database: notes what the instances show, chooses,
 * and on a switch starts `peak` and `followed` afresh and records the one left. Returns the
 * schema to read and the records that changed, for the database.
 */
export function follow(
  config: Pick<SidecarConfig, "chains">,
  watch: Watch,
  current: string,
  sources: Source[],
): { schema: string; left: { schema: string; commits: Commits }[]; moved: string[] } {
  const { moved, newlyLeft } = noteCommits(config, watch, current, sources);
  const schema = chooseSource(config, current, sources, watch);
  const left = [...newlyLeft];
  if (schema !== current) {
    watch.peak.clear();
    watch.followed.clear();
    // Absent (frozen inside its reorg transaction, its locks held): as it was last seen, on every
    // chain (what it shows when it is back is not known now). A pg_terminate_backend rolls it back
    // to the old fork, with the same checkpoint.
    const shown = sources.find((s) => s.schema === current)?.progress;
    const was = shown ?? watch.last.get(current);
    const to = sources.find((s) => s.schema === schema);
    if (was) {
      const commits = leftCommits(
        config,
        { schema: current, progress: was },
        to && shown ? commitsOf(config, to) : new Map(),
      );
      if (commits.size > 0) {
        watch.left.set(current, new Map(commits));
        left.push({ schema: current, commits });
      }
    }
  }
  for (const [chainId, p] of sources.find((s) => s.schema === schema)?.progress ?? []) {
    watch.peak.set(chainId, Math.max(watch.peak.get(chainId) ?? -1, p.indexed));
  }
  return { schema, left, moved: moved.filter((m) => !left.some((l) => l.schema === m)) };
}

/**
 * Before a step: the config whose ponderSchema is the instance to read, `current` the one read
 * before. A removal noted under one instance's checkpoint says nothing about another's rows (they
 * may be in a reorg's first half or a crash recovery of their own): on a switch the guard starts
 * afresh. Recorded before the step runs, so a step that fails after a switch cannot leave the
 * guard with the other instance's checkpoint.
 */
export async function followSource(
  db: pg.ClientBase,
  config: SidecarConfig,
  current: string,
  guard: RemovalGuard,
  watch: Watch,
  durability?: Durability,
): Promise<SidecarConfig> {
  if (config.ponderReplicaSchemas.length === 0) return config;
  const sources = await readSources(db, [config.ponderSchema, ...config.ponderReplicaSchemas]);
  // Every instance's commits made durable, not only the one read: a crash of PostgreSQL that
  // left a hole in another's, read later, looked like a reorg of applied events.
  if (durability) {
    await keepDurable(
      db,
      durability,
      sources.map((s) => {
        const all = [...(s.progress?.values() ?? [])];
        return { schema: s.schema, rel: all[0]?.rel, ready: all.length > 0 && all.every((p) => p.ready) };
      }),
    );
  }
  const { schema, left, moved } = follow(config, watch, current, sources);
  if (schema !== current) guard.clear();
  for (const l of left) await writeLeftSource(db, l.schema, l.commits);
  for (const m of moved) await writeLeftSource(db, m, null);
  return schema === config.ponderSchema ? config : { ...config, ponderSchema: schema };
}

/** A new term's watch: what earlier leaders left, from the database. */
export async function startWatch(db: pg.ClientBase, config: SidecarConfig): Promise<Watch> {
  return newWatch(config.ponderReplicaSchemas.length === 0 ? new Map() : await readLeftSources(db));
}

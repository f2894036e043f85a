/**
 * A realtime reorg of Ponder's in two commits: its reorg transaction deletes the rows above the
 * common block, and only its next block's commit lowers `_ponder_checkpoint`
 * (test/ponder-internals/reorg-order.test.ts). Between the two, the checkpoint vouches for blocks
 * whose rows are gone. Applied events missing then wait for a later checkpoint (removal-guard.ts);
 * but a step whose window reached past the common block (a "reorg" deeper than CONFIRMATIONS: a
 * provider lagging the head by more blocks) moved the cursor past the events of that window that
 * Ponder deleted before any step had applied them: when they came back they were added late, as
 * a reorg's (audit `reorg`, `reorg_correction` paged), and the row missed them meanwhile.
 *
 * Ponder's reorg transaction drops its `reorg` trigger on stake_event and creates it again, which
 * gives the trigger a new OID (all three orderings, Ponder 0.17.7 runtime/*.ts; pinned by
 * reorg-order.test.ts). Ponder creates it otherwise only at the end of a backfill, before it is
 * ready. So a step that finds, Ponder ready, another OID than the last step found, Ponder ready
 * then too, knows a reorg transaction (or a restart the sidecar did not see) has committed since:
 * it steps no chain whose checkpoint is the one it reads now, until that checkpoint changes (the
 * next block's commit, the reorg's second half). One block of delay after each reorg, none
 * otherwise. A term's first step, and the first after a switch of instance, know no OID: they
 * hold a chain whose checkpoint row was written before the trigger was created (its xmin older),
 * the reorg's second half still to come.
 */
import type pg from "pg";
import { type Behind, type Durability, newDurability, settleDurable, tableBehind } from "./durable-ponder";
import type { PonderProgress } from "./sql/read-progress";

/** Per leader term: the trigger's OID the last step saw Ponder ready with, and the chains held. */
export type ReorgWatch = {
  /** The schema of the instance read (PONDER_REPLICA_SCHEMAS: each its own trigger). */
  schema: string | null;
  trigger: string | null;
  /** Chain → the checkpoint it is held at. */
  held: Map<number, string>;
  /**
   * Per schema read, the OID of the table that holds the trigger (reorgTable), and of the
   * relation `schema`.stake_event names (itself, or a views schema's view) when it was looked up.
   */
  tables: Map<string, Behind>;
  /** Which instances' commits are made durable (durable-ponder.ts), for the term. */
  durable: Durability;
  /** Whether the last step found Ponder ready (or none has run yet). */
  ready: boolean;
  /** No step of this term has read `schema` yet: no OID to compare with (see reorgHeld). */
  fresh: boolean;
};

export const newReorgWatch = (): ReorgWatch => ({
  schema: null,
  trigger: null,
  held: new Map(),
  tables: new Map(),
  durable: newDurability(),
  ready: true,
  fresh: true,
});

/**
 * The table whose `reorg` trigger the step's progress read asks for: `schema`'s stake_event, or
 * behind a views schema's view the table its rule reads. Looked up once per schema (a round trip
 * before the step's BEGIN), and again once Ponder is ready after it was not (a `ponder dev`
 * restart makes the table anew): per round, pg_rewrite and pg_depend cost the progress read
 * 0.25 ms of planning (a review measured it). None while Ponder is not ready (its trigger is not
 * looked at then), nor while there is no such table.
 */
export async function reorgTable(db: pg.ClientBase, watch: ReorgWatch, schema: string): Promise<string | null> {
  if (!watch.ready) return null;
  const found = watch.tables.get(schema) ?? (await tableBehind(db, schema));
  if (found === null) return null;
  watch.tables.set(schema, found);
  // Looked up anew, the table may be new too: Ponder's commits to it are made durable first
  // (durable-ponder.ts), and again once due if that could not settle.
  await settleDurable(db, watch.durable, schema, found);
  return found.table;
}

/**
 * The `_ponder_checkpoint` beside the table reorgTable found, for a step with no OID to compare
 * with (a term's first, a switch's: see reorgHeld); none otherwise.
 */
export function reorgSince(watch: ReorgWatch, schema: string): string | undefined {
  return watch.fresh || schema !== watch.schema ? watch.tables.get(schema)?.checkpoints : undefined;
}

/** Notes what this step reads of Ponder; the chains it must not step (their checkpoint unchanged since a reorg). */
export function reorgHeld(watch: ReorgWatch, schema: string, progress: Map<number, PonderProgress>): Set<number> {
  const all = [...progress.values()];
  const ready = all.length > 0 && all.every((p) => p.ready);
  const trigger = all[0]?.reorgs ?? null;
  // Another instance read (followSource): its trigger is its own, and its checkpoints too.
  if (schema !== watch.schema) {
    watch.schema = schema;
    watch.trigger = null;
    watch.held.clear();
    watch.fresh = true;
  }
  // The name now stands for another relation (a redeploy made the views schema's views anew, or
  // `ponder dev` the table): what was known of the table behind it is dropped, looked up (and
  // made durable) at the next step, and its trigger's OID is no baseline for the new table's.
  // Kept, the new deployment's commits were never made durable, and its reorgs never seen.
  const rel = all[0]?.rel;
  const known = watch.tables.get(schema);
  if (known !== undefined && rel !== undefined && rel !== known.rel) {
    watch.tables.delete(schema);
    watch.trigger = null; // this step read the old table's: no baseline until the next
    watch.held.clear();
    watch.ready = ready;
    return new Set();
  }
  if (ready && trigger !== null && watch.trigger !== null && trigger !== watch.trigger) {
    for (const p of all) watch.held.set(p.chainId, p.checkpoint);
  }
  // A term's first step, or the first after a switch of instance, has no OID to compare with:
  // a reorg transaction that committed just before it would go unseen. Its trigger created after
  // a chain's last checkpoint says so (the checkpoint row's xmin against the trigger's), chain by
  // chain. After a backfill seen by this term (not ready, then ready) that is the backfill's end.
  if (ready && trigger !== null && watch.trigger === null && watch.fresh) {
    for (const p of all) if (p.reorgAfter) watch.held.set(p.chainId, p.checkpoint);
  }
  watch.fresh = false;
  // Not ready: a backfill's end creates the trigger again, and what was seen before it says nothing.
  watch.trigger = ready ? trigger : null;
  // Not ready: the table may be made anew meanwhile, looked up again once Ponder is ready.
  if (!ready) watch.tables.delete(schema);
  watch.ready = ready;
  for (const [chainId, checkpoint] of watch.held) {
    if (progress.get(chainId)?.checkpoint !== checkpoint) watch.held.delete(chainId);
  }
  return new Set(watch.held.keys());
}

/**
 * The Ponder instances earlier steps left and that have not committed on every chain since, for a
 * new leader term (choose-source.ts). Reads stakesync.left_source.
 */
import type { Queryable } from "../../db/queryable";
import type { Commits } from "../choose-source";

export async function readLeftSources(db: Queryable): Promise<Map<string, Commits>> {
  const { rows } = await db.query<{ schema: string; chain_id: number; shown: string }>(
    "SELECT schema, chain_id, shown FROM stakesync.left_source",
  );
  const left = new Map<string, Commits>();
  for (const r of rows) left.set(r.schema, (left.get(r.schema) ?? new Map()).set(r.chain_id, r.shown));
  return left;
}

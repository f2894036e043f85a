/**
 * Records the Ponder instance a step left, with what it showed on each chain then (`commits`), or
 * forgets it (null) once it has committed on every chain since. Writes stakesync.left_source.
 */
import type { Queryable } from "../../db/queryable";
import type { Commits } from "../choose-source";

export async function writeLeftSource(db: Queryable, schema: string, commits: Commits | null) {
  const rows = [...(commits ?? [])];
  await db.query(
    `WITH gone AS (DELETE FROM stakesync.left_source WHERE schema = $1 AND chain_id <> ALL ($2::int[]))
     INSERT INTO stakesync.left_source (schema, chain_id, shown)
     SELECT $1, chain_id, shown FROM unnest($2::int[], $3::text[]) AS t(chain_id, shown)
     ON CONFLICT (schema, chain_id) DO UPDATE SET shown = excluded.shown`,
    [schema, rows.map(([chainId]) => chainId), rows.map(([, shown]) => shown)],
  );
}

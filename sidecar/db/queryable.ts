import type pg from "pg";

/** A pool or a single connection: read helpers work with either. */
export type Queryable = Pick<pg.ClientBase, "query">;

/** PostgreSQL's "relation does not exist" (and a schema that does not exist). */
export function missingRelation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "42P01" || code === "3F000";
}

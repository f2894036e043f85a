import type pg from "pg";

/** A pool or a single connection: read helpers work with either. */
export type Queryable = Pick<pg.ClientBase, "query">;

/**
 * Statements sent as one simple query: one round trip for all of them. A realtime round was 31
 * round trips, then 19, of a round of 14 ms (fast tier) whose statements took the server 6 ms
 * to plan and run: the rest was the round trips. So operations are declared as their
 * statements where they can be, and the step sends consecutive ones together. PostgreSQL runs
 * them in order and stops at the first error. A simple query takes no parameters: values go in
 * as literals (`inline`), quoted by pg's own escapeLiteral.
 */
import pg from "pg";
import type { Queryable } from "./queryable";

/** An operation's statements, in order. */
export type Statements = readonly string[];

export async function runTogether(db: Queryable, ...operations: Statements[]): Promise<void> {
  await allRows(db, operations.flat());
}

/** Sends `statements` as one simple query and returns the rows of the last one. */
export async function lastRows<R>(db: Queryable, statements: readonly string[]): Promise<R[]> {
  return ((await allRows(db, statements)).at(-1) ?? []) as R[];
}

/** Sends `statements` as one simple query and returns the rows of each, in order. */
export async function allRows(db: Queryable, statements: readonly string[]): Promise<unknown[][]> {
  const result = (await db.query(statements.join(";\n"))) as unknown as { rows: unknown[] } | { rows: unknown[] }[];
  return Array.isArray(result) ? result.map((r) => r.rows) : [result.rows];
}

/** A value a statement takes: what the operations bind as parameters. */
export type Value = string | number | bigint | boolean | null | readonly (string | number | bigint | null)[];

/**
 * `text` with each `$n` replaced by `values[n - 1]` as a literal, for a statement sent with
 * others. The statements keep their casts (`$1::int[]`), which type the literals as they typed
 * the parameters.
 */
export function inline(text: string, values: readonly Value[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= values.length) throw new Error(`inline: no value for $${n}`);
    return literal(values[index] as Value);
  });
}

function literal(value: Value): string {
  if (value === null) return "NULL";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" || typeof value === "bigint") return number(value);
  if (typeof value === "string") return pg.escapeLiteral(value);
  // An array literal: '{1,2}' or '{"a","b"}', quoted as a whole.
  const elements = value.map((v) =>
    v === null ? "NULL" : typeof v === "string" ? `"${v.replace(/[\\"]/g, "\\$&")}"` : number(v),
  );
  return pg.escapeLiteral(`{${elements.join(",")}}`);
}

/** As pg binds a number: its decimal text. */
function number(value: number | bigint): string {
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`inline: not a finite number: ${value}`);
  return value.toString();
}

/**
 * Statements sent as one simple query: one round trip for all of them. A realtime round was 31
 * round trips, then 19, of a round of 14 ms (fast tier) whose statements took the server 6 ms
 * to plan and run: the rest was the round trips. So operations are declared as their
 * statements where they can be, and the step sends consecutive ones together. PostgreSQL runs
 * them in order and stops at the first error. A simple query takes no parameters: values go in
 * as literals (`inline`), quoted as pg's escapeLiteral quotes them.
 */
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

/** The answer of a yes/no statement (one row, `yes`). */
export const yes = (rows: unknown[] | undefined) => (rows as { yes: boolean }[] | undefined)?.[0]?.yes === true;

/** A value a statement takes: what the operations bind as parameters. */
export type Value = string | number | bigint | boolean | null | readonly (string | number | bigint | null)[];

/**
 * An expression computed by the server in place of a value (`inline` puts it in as it is): for
 * an operation whose input an earlier statement of the same round trip makes, such as the
 * wallets of a temp table that statement filled.
 */
export type Computed = { readonly sql: string };
export const computed = (sql: string): Computed => ({ sql });

/**
 * `text` with each `$n` replaced by `values[n - 1]` as a literal, for a statement sent with
 * others. The statements keep their casts (`$1::int[]`), which type the literals as they typed
 * the parameters.
 */
export function inline(text: string, values: readonly (Value | Computed)[]): string {
  // Each value once, however often the statement names it (a claim names its wallets thrice).
  const literals = new Map<number, string>();
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= values.length) throw new Error(`inline: no value for $${n}`);
    const value = values[index] as Value | Computed;
    const found = literals.get(index) ?? (isComputed(value) ? `(${value.sql})` : literal(value));
    literals.set(index, found);
    return found;
  });
}

function isComputed(value: Value | Computed): value is Computed {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "sql" in value;
}

function literal(value: Value): string {
  if (value === null) return "NULL";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" || typeof value === "bigint") return number(value);
  if (typeof value === "string") return quoted(value);
  // An array literal: '{1,2}' or '{"a","b"}', quoted as a whole.
  const elements = value.map((v) =>
    v === null ? "NULL" : typeof v === "string" ? `"${v.replace(/[\\"]/g, "\\$&")}"` : number(v),
  );
  return quoted(`{${elements.join(",")}}`);
}

/**
 * pg.escapeLiteral's result (quotes and backslashes doubled, E'' when there is a backslash),
 * built by one replace: pg's appends a character at a time, and for the 10,000 wallets of a
 * catch-up (430 kB) that chain of appended strings took the sidecar 65 MB more memory (the
 * bench's peak went from 139 to 217 MB).
 */
function quoted(text: string): string {
  return text.includes("\\") ? ` E'${text.replace(/['\\]/g, "$&$&")}'` : `'${text.replace(/'/g, "''")}'`;
}

/** As pg binds a number: its decimal text. */
function number(value: number | bigint): string {
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`inline: not a finite number: ${value}`);
  return value.toString();
}

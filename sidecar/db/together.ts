/**
 * Statements sent as one simple query: one round trip for all of them. A realtime round was 31
 * round trips, then 19, of a round of 14 ms (fast tier) whose statements took the server 6 ms
 * to plan and run: the rest was the round trips. So operations are declared as their
 * statements where they can be, and the step sends consecutive ones together. PostgreSQL runs
 * them in order and stops at the first error. A simple query takes no parameters: values go in
 * as literals (`inline`), quoted as pg's escapeLiteral quotes them.
 */
import { createHash } from "node:crypto";
import type { Queryable } from "./queryable";

/** An operation's statements, in order: text, or text with its values (`inline`). */
export type Statements = readonly (string | Inlined)[];

export async function runTogether(db: Queryable, ...operations: Statements[]): Promise<void> {
  await allRows(db, operations.flat());
}

/** Sends `statements` as one simple query and returns the rows of the last one. */
export async function lastRows<R>(db: Queryable, statements: Statements): Promise<R[]> {
  return ((await allRows(db, statements)).at(-1) ?? []) as R[];
}

/**
 * Sends `statements` as one simple query and returns the rows of each, in order. `prepared`: each
 * SELECT, INSERT, UPDATE, DELETE or WITH statement runs as a statement prepared on this
 * connection (see `preparedOn`), its values passed to EXECUTE: for a round of a few rows, whose
 * every statement the server would otherwise parse and plan again.
 */
export async function allRows(
  db: Queryable,
  statements: Statements,
  { prepared = false }: { prepared?: boolean } = {},
): Promise<unknown[][]> {
  if (prepared) return preparedRows(db, statements);
  return rowsOf(await db.query(statements.join(";\n")));
}

/** Each statement's rows, in order; those of the statements preparedRows added left out. */
function rowsOf(result: unknown): unknown[][] {
  const results = result as Result | Result[];
  return (Array.isArray(results) ? results : [results])
    .filter((r) => r.command !== "PREPARE" && r.fields[0]?.name !== PLANS)
    .map((r) => r.rows);
}

type Result = { rows: unknown[]; command: string; fields: { name: string }[] };

/**
 * The names prepared on each connection. A realtime round's statements are the same every round
 * but for their values: planned once per connection, not every round (the server spent 2.8 ms of
 * an 11 ms round planning them, fast tier). Only for rounds of a few rows: a plan cached for them
 * would also run a catch-up of 100,000 events (a temp table's size is read when a statement is
 * planned, not when it runs).
 */
const preparedNames = new WeakMap<Queryable, { names: Set<string>; unsure: boolean }>();

/**
 * Around the EXECUTEs, in the same round trip: the prepared statements are planned once, for any
 * values (a generic plan). Left to choose, the server planned again at every run those that take
 * values (the first-activation look-ups, the claim): 1.1 ms a round. Only around them, for the
 * rest of their transaction: a session-wide setting would also give generic plans to the
 * session's other queries with values (pg sends them as unnamed prepared statements), where a
 * bound array must be hashed as the value it is (a catch-up's thousands of wallets). Their rows
 * are left out of the results (by their column's name), as a PREPARE's are.
 */
const PLANS = "stakesync_plans";
const GENERIC_PLANS = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true) AS ${PLANS}`;
const PLANS_AS_BEFORE = `SELECT set_config('plan_cache_mode', 'auto', true) AS ${PLANS}`;

/** At most this many per connection: past it, statements go as text (a text that varied would grow the list). */
const MAX_PREPARED = 100;

/**
 * Sends `statements` with each preparable one as EXECUTE, after its PREPARE the first time this
 * connection runs it: in the same round trip, right before it, as the temp tables it names may
 * be created by an earlier statement of it. A PREPARE is not transactional: it stays after a
 * ROLLBACK, and one sent in a query that failed may or may not have run; after a failure the
 * connection's list is read back from the server before the next use.
 */
async function preparedRows(db: Queryable, statements: Statements): Promise<unknown[][]> {
  // A new connection's list is read from the server first: a pool that hands over its server
  // sessions without resetting them (PgBouncer in session mode with an empty server_reset_query)
  // may give it one that holds this sidecar's statements already, and a PREPARE of a name taken
  // fails the round (42P05).
  const on = preparedNames.get(db) ?? { names: new Set<string>(), unsure: true };
  preparedNames.set(db, on);
  if (on.unsure) {
    const { rows } = await db.query<{ name: string }>(
      "SELECT name FROM pg_prepared_statements WHERE name LIKE 'stakesync\\_%'",
    );
    on.names = new Set(rows.map((r) => r.name));
    on.unsure = false;
  }
  const sent: string[] = [];
  let preparing = false;
  // Where the first PREPARE or EXECUTE goes, and after which EXECUTE the last: generic plans between.
  let first: number | undefined;
  let last: number | undefined;
  for (const statement of statements) {
    const text = String(statement);
    if (!/^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b/i.test(text)) {
      sent.push(text);
      continue;
    }
    const { body, literals } =
      typeof statement === "string" ? { body: statement, literals: [] } : parameters(statement);
    const name = `stakesync_${createHash("sha1").update(body).digest("hex").slice(0, 20)}`;
    if (!on.names.has(name)) {
      if (on.names.size >= MAX_PREPARED) {
        sent.push(text);
        continue;
      }
      preparing = true;
      first ??= sent.length;
      sent.push(`PREPARE ${name} AS ${body}`);
      on.names.add(name);
    }
    first ??= sent.length;
    sent.push(literals.length > 0 ? `EXECUTE ${name}(${literals.join(", ")})` : `EXECUTE ${name}`);
    last = sent.length;
  }
  if (first !== undefined && last !== undefined) {
    sent.splice(last, 0, PLANS_AS_BEFORE);
    sent.splice(first, 0, GENERIC_PLANS);
  }
  try {
    return rowsOf(await db.query(sent.join(";\n")));
  } catch (error) {
    if (preparing) on.unsure = true;
    throw error;
  }
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
export function inline(text: string, values: readonly (Value | Computed)[]): Inlined {
  return new Inlined(text, values);
}

/**
 * A statement and its values. As a string (sent with others, or put inside another statement's
 * text) the values stand in it as literals; `allRows` with `prepared` passes them to EXECUTE.
 */
export class Inlined {
  private rendered: string | undefined;
  constructor(
    readonly text: string,
    readonly values: readonly (Value | Computed)[],
  ) {
    for (const [, n] of text.matchAll(/\$(\d+)/g)) valueIndex(n as string, values);
  }

  toString(): string {
    this.rendered ??= this.render();
    return this.rendered;
  }

  private render(): string {
    // Each value once, however often the statement names it (a claim names its wallets thrice).
    const literals = new Map<number, string>();
    return this.text.replace(/\$(\d+)/g, (_, n: string) => {
      const index = valueIndex(n, this.values);
      const value = this.values[index] as Value | Computed;
      const found = literals.get(index) ?? (isComputed(value) ? `(${value.sql})` : literal(value));
      literals.set(index, found);
      return found;
    });
  }
}

/**
 * The statement as PREPARE takes it: computed values in its text, the others as parameters
 * numbered in order of first use; and their literals, in that order, for EXECUTE.
 */
function parameters({ text, values }: Inlined): { body: string; literals: string[] } {
  const numbers = new Map<number, string>();
  const literals: string[] = [];
  const body = text.replace(/\$(\d+)/g, (_, n: string) => {
    const index = valueIndex(n, values);
    const value = values[index] as Value | Computed;
    if (isComputed(value)) return `(${value.sql})`;
    let parameter = numbers.get(index);
    if (!parameter) {
      literals.push(literal(value));
      parameter = `$${literals.length}`;
      numbers.set(index, parameter);
    }
    return parameter;
  });
  return { body, literals };
}

function valueIndex(n: string, values: readonly unknown[]): number {
  const index = Number(n) - 1;
  if (index < 0 || index >= values.length) throw new Error(`inline: no value for $${n}`);
  return index;
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

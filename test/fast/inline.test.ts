/**
 * Values sent as literals (sidecar/db/together.ts `inline`): PostgreSQL reads back exactly the
 * values a bound parameter would have carried, whatever quotes or backslashes they hold.
 */
import type pg from "pg";
import { afterAll, expect, it } from "vitest";
import { allRows, inline } from "../../sidecar/db/together";
import { type Fake, fakePonder } from "./ponder-fake";

let fake: Fake;
afterAll(() => fake?.close());

it("round-trips text, arrays with quotes, backslashes and NULLs, numbers and NULL", async () => {
  fake = await fakePonder();
  const texts = ["plain", "o'brien", "back\\slash", "both'\\", 'dq"uote', "", "'; DROP TABLE developers; --"];
  const values = [texts, [1, -2, 9_007_199_254_740_993n], "x'\\y", null, 31337] as const;
  const statement = inline(
    "SELECT $1::text[] AS texts, $2::numeric[]::text[] AS numbers, $3::text AS text, $4::int AS none, $5::int AS n, $1::text[] AS again",
    [...values],
  );
  const expected = {
    texts,
    numbers: ["1", "-2", "9007199254740993"],
    text: "x'\\y",
    none: null,
    n: 31337,
    again: texts,
  };
  const { rows } = await fake.db.query(String(statement));
  expect(rows[0]).toEqual(expected);
  // The same values passed to EXECUTE, as a realtime round passes them.
  const [asExecuted] = await allRows(fake.db, [statement], { prepared: true });
  expect(asExecuted?.[0]).toEqual(expected);
  await expect(fake.db.query("SELECT count(*) FROM developers")).resolves.toBeDefined();
  expect(() => inline("SELECT $2", [1])).toThrow(/no value for \$2/);
});

it("runs statements prepared on the connection, and prepares again what a failed query left unknown", async () => {
  fake ??= await fakePonder();
  const db = fake.db;
  const names = async () =>
    (
      await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'stakesync%'",
      )
    ).rows[0]?.n ?? 0;
  const before = await names();
  const count = (table: string) => inline(`SELECT count(*)::int AS n FROM ${table} WHERE $1::int > 0`, [1]);
  // The PREPARE fails (no such table): the name it would have had must not be taken as prepared.
  await expect(allRows(db, [count("later_table")], { prepared: true })).rejects.toThrow(/later_table/);
  await db.query("CREATE TABLE later_table (x int); INSERT INTO later_table VALUES (1), (2)");
  expect(await allRows(db, [count("later_table")], { prepared: true })).toEqual([[{ n: 2 }]]);
  // The PREPARE runs, a later statement fails: the name is prepared, and not prepared twice.
  const statement = inline("SELECT $1::int + $2::int AS n", [2, 3]);
  const refused = "SET LOCAL lock_timeout = 'never'"; // not a statement that is prepared
  await expect(allRows(db, ["BEGIN", statement, refused], { prepared: true })).rejects.toThrow(/lock_timeout/);
  await db.query("ROLLBACK");
  expect(await allRows(db, ["BEGIN", statement, "COMMIT"], { prepared: true })).toEqual([[], [{ n: 5 }], []]);
  expect(await allRows(db, [inline("SELECT $1::int + $2::int AS n", [4, 5])], { prepared: true })).toEqual([
    [{ n: 9 }],
  ]);
  // Planned generically only while they run: the session's other queries with values (unnamed
  // prepared statements to the server) keep plans made for their values.
  await db.query("BEGIN");
  expect(await allRows(db, [statement, "SHOW plan_cache_mode"], { prepared: true })).toEqual([
    [{ n: 5 }],
    [{ plan_cache_mode: "auto" }],
  ]);
  await db.query("COMMIT");
  // Two statements, each prepared once, whatever their values.
  expect((await names()) - before).toBe(2);
});

it("runs its prepared statements on a server session another client left them on (a pool that does not reset sessions)", async () => {
  fake ??= await fakePonder();
  const statement = inline("SELECT $1::int * 2 AS n", [21]);
  expect(await allRows(fake.db, [statement], { prepared: true })).toEqual([[{ n: 42 }]]);
  // Another client handed the same server session: PgBouncer in session mode, its
  // server_reset_query empty. Its first PREPARE of that name failed the round (42P05).
  const handedOver = { query: fake.db.query.bind(fake.db) } as unknown as pg.Client;
  expect(await allRows(handedOver, [statement], { prepared: true })).toEqual([[{ n: 42 }]]);
});

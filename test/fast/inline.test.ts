/**
 * Values sent as literals (sidecar/db/together.ts `inline`): PostgreSQL reads back exactly the
 * values a bound parameter would have carried, whatever quotes or backslashes they hold.
 */
import { afterAll, expect, it } from "vitest";
import { inline } from "../../sidecar/db/together";
import { type Fake, fakePonder } from "./ponder-fake";

let fake: Fake;
afterAll(() => fake?.close());

it("round-trips text, arrays with quotes, backslashes and NULLs, numbers and NULL", async () => {
  fake = await fakePonder();
  const texts = ["plain", "o'brien", "back\\slash", "both'\\", 'dq"uote', "", "'; DROP TABLE developers; --"];
  const values = [texts, [1, -2, 9_007_199_254_740_993n], "x'\\y", null, 31337] as const;
  const { rows } = await fake.db.query(
    inline(
      "SELECT $1::text[] AS texts, $2::numeric[]::text[] AS numbers, $3::text AS text, $4::int AS none, $5::int AS n, $1::text[] AS again",
      [...values],
    ),
  );
  expect(rows[0]).toEqual({
    texts,
    numbers: ["1", "-2", "9007199254740993"],
    text: "x'\\y",
    none: null,
    n: 31337,
    again: texts,
  });
  await expect(fake.db.query("SELECT count(*) FROM developers")).resolves.toBeDefined();
  expect(() => inline("SELECT $2", [1])).toThrow(/no value for \$2/);
});

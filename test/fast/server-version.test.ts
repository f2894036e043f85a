/**
 * The oldest PostgreSQL the sidecar runs on (sidecar/db/migrate.ts): an older server is refused
 * by name at start, instead of every try to lead failing as if the database were unreachable.
 */
import { afterEach, expect, it } from "vitest";
import { MIN_SERVER_VERSION, requireServerVersion, ServerVersionError } from "../../sidecar/db/migrate";
import { type Fake, fakePonder } from "./ponder-fake";

let fake: Fake | undefined;
afterEach(async () => {
  await fake?.close();
});

it("refuses a server older than the minimum, naming DATABASE_URL and the versions", async () => {
  fake = await fakePonder();
  // This server passes; against a minimum above it, it is what an old one would be.
  await requireServerVersion(fake.db);
  expect(MIN_SERVER_VERSION).toBe(140_000);
  const outcome = await requireServerVersion(fake.db, 10_000_000).catch((error: Error) => error);
  expect(outcome).toBeInstanceOf(ServerVersionError);
  expect(String(outcome)).toMatch(
    /^ServerVersionError: DATABASE_URL: PostgreSQL \d+\.\d+.*; stakesync needs PostgreSQL 14 or newer$/,
  );
});

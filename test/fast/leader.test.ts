/**
 * Taking the leader lock (sidecar/leader.ts): a session a pooler shares or hands over without a
 * reset, which already holds the lock, is told apart from one of our own.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { tryLeaderLock } from "../../sidecar/leader";
import { type Fake, fakePonder } from "./ponder-fake";

let fake: Fake | undefined;
const clients: pg.Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.end();
  await fake?.close();
});

async function session(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return client;
}

it("tells a session that already holds the leader lock (PgBouncer in transaction mode) from its own and another's", async () => {
  fake = await fakePonder();
  const [first, second] = [await session(fake.url), await session(fake.url)];
  expect(await tryLeaderLock(first)).toBe("taken");
  expect(await tryLeaderLock(second)).toBe("held");
  // A second sidecar whose statements a pooler runs on the first one's server session: the lock,
  // re-entrant there, answered true, and both led.
  expect(await tryLeaderLock(first)).toBe("handed over");
});

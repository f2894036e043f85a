/**
 * `stakesync verify` and `stakesync plan` on a database that fails under them. Both are read-only
 * and end with exit 2 and one line on an error; exit 1 means a mismatch (verify) or a change
 * (plan), which runbooks act on. So an error must never look like either.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { plan } from "../../cli/plan";
import { verify } from "../../cli/verify";
import { waitFor } from "../../lib/wait";
import { type Fake, fakePonder, USDC, wallet } from "./ponder-fake";

const ends: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end().catch(() => undefined);
});

async function synced() {
  const fake = await fakePonder();
  ends.push(() => fake.close());
  const w = wallet(0xc1);
  await fake.register(w, "c1@example.test");
  await fake.index([{ developer: w, amount: 2n * USDC, block: 10 }], 12);
  await fake.round();
  return fake;
}

/** Holds the developers table as an application's migration does, until released. */
async function holdDevelopers(fake: Fake) {
  const holder = new pg.Client({ connectionString: fake.url });
  await holder.connect();
  ends.push(() => holder.end());
  await holder.query(`BEGIN; LOCK TABLE ${fake.config.developersTable.sql} IN ACCESS EXCLUSIVE MODE`);
  return { release: () => holder.query("ROLLBACK") };
}

it("says the database connection was lost, an error (exit 2), when the server ends verify's or plan's session mid-read, instead of crashing the process with exit 1", async () => {
  const fake = await synced();
  const held = await holdDevelopers(fake);
  // Both wait for the table; then the server ends their sessions, as a restart or failover does.
  const outcomes = [
    verify(fake.config, () => undefined, { lockWaitMs: 60_000 }).catch((e: Error) => e),
    plan(fake.config, { lockWaitMs: 60_000 }).catch((e: Error) => e),
  ];
  await waitFor("both reads waiting for developers", async () => {
    const { rows } = await fake.db.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND datname = current_database()`,
    );
    return rows[0].n === 2;
  });
  await fake.db.query(
    // This database's only: the cluster is shared with the other fast test files, which run alongside.
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND datname = current_database()`,
  );
  // Before: the session's end, unheard as an event of the client, crashed the process.
  const [verified, planned] = await Promise.all(outcomes);
  expect(String(verified)).toMatch(
    /^Error: cannot read "public"\."developers": lost the database connection \(SQLSTATE 57P01\).*try again/,
  );
  expect(String(planned)).toMatch(/^Error: cannot read the tables: lost the database connection \(SQLSTATE 57P01\)/);
  await held.release();
});

it("holds no database connection while verify reads the chain, so a database restart then cannot end it (it crashed with exit 1, 'a mismatch')", async () => {
  const fake = await synced();
  // Ponder's running sums, which verify also reads (the fake has none): empty, so they differ.
  await fake.db.query(
    `CREATE TABLE "${fake.config.ponderSchema}".developer_stake (chain_id integer, developer text, amount numeric(78,0))`,
  );
  // A provider that holds its answers until told, then refuses: verify is then at its chain reads.
  const held: ServerResponse[] = [];
  let answering = false;
  const refuse = (res: ServerResponse) => res.writeHead(503).end();
  const provider = createServer((_req, res) => (answering ? refuse(res) : held.push(res)));
  await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve));
  ends.push(() => new Promise((resolve) => provider.close(resolve)));
  const rpcUrls = [`http://127.0.0.1:${(provider.address() as AddressInfo).port}`];
  const outcome = verify(
    { ...fake.config, chains: fake.config.chains.map((c) => ({ ...c, rpcUrls })) },
    () => undefined,
  )
    .then(() => "verified")
    .catch((e: Error) => e);
  await waitFor("verify at its chain reads", async () => held.length > 0);
  // The server ends every other session, as a restart does. Before, verify's idle connection was
  // one, and its end, unheard, crashed the process.
  const { rows } = await fake.db.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()`,
  );
  expect(rows).toEqual([]);
  answering = true;
  for (const res of held.splice(0)) refuse(res);
  expect(String(await outcome)).toMatch(/^Error: cannot read stakeOf\(\) on chain 31337 \(127\.0\.0\.1:\d+\)/);
});

it("says why `stakesync plan` cannot read stakesync.cursor, instead of telling the operator that no sidecar has synced", async () => {
  const fake = await synced();
  // The indexer's role, say: it may connect, but the sidecar's schema is not its.
  await fake.db.query(`CREATE ROLE plan_reader LOGIN PASSWORD 'plan'`);
  ends.push(() => fake.db.query("DROP OWNED BY plan_reader; DROP ROLE plan_reader"));
  const url = new URL(fake.url);
  url.username = "plan_reader";
  url.password = "plan";
  const outcome = await plan({ ...fake.config, database: { ...fake.config.database, url: url.toString() } }).catch(
    (e: Error) => e,
  );
  // Before: "no sidecar has synced chain 31337 yet: run one …", with a sidecar synced.
  expect(String(outcome)).toMatch(/^Error: cannot read stakesync\.cursor: permission denied for schema stakesync/);
  // A database where no sidecar ever ran is still said so.
  await fake.db.query("DROP SCHEMA stakesync CASCADE");
  expect(String(await plan(fake.config).catch((e: Error) => e))).toMatch(/no sidecar has synced chain 31337 yet/);
});

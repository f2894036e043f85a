/**
 * Ponder's commits made durable (sidecar/sync/durable-ponder.ts). Ponder sets synchronous_commit
 * off on every connection of its pool; a PostgreSQL crash then lost its last blocks while it ran
 * on (the soak's crash: a stake missing from Ponder and developers for good, and an applied event
 * taken back as a reorg's). The sidecar's first step puts a statement trigger on stake_event that
 * turns synchronous_commit on for every transaction that changes Ponder's events.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import {
  DURABLE_TRIGGER,
  keepDurable,
  makeCommitsDurable,
  newDurability,
  REFUSED_RETRY_MS,
} from "../../sidecar/sync/durable-ponder";
import { newReorgWatch, reorgHeld, reorgTable } from "../../sidecar/sync/reorg-watch";
import { type Fake, fakePonder, progressOnChain, SCHEMA, USDC, wallet } from "./ponder-fake";

let fake: Fake;
const clients: pg.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  await fake?.close();
});

async function connectAs(user: string, password: string) {
  const url = new URL(fake.url);
  url.username = user;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  clients.push(client);
  return client;
}

/** How many of the sidecar's triggers `schema`'s stake_event has. */
const triggers = async (schema = SCHEMA) =>
  (
    await fake.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2`,
      [`"${schema}".stake_event`, DURABLE_TRIGGER],
    )
  ).rows[0]?.n;

it("makes every transaction of Ponder's that changes its events commit as durably as the server's setting, at least local, though Ponder's session set it off", async () => {
  fake = await fakePonder();
  // The sidecar's first step puts it on (before: none).
  await fake.round();
  expect(await triggers()).toBe(1);
  // Ponder's role, as least privilege has it: its own tables, nothing of the sidecar's schema.
  await fake.db.query(`CREATE ROLE ponder_writer LOGIN PASSWORD 'p';
    GRANT USAGE ON SCHEMA "${SCHEMA}" TO ponder_writer;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "${SCHEMA}".stake_event TO ponder_writer`);
  try {
    /** The setting a Ponder session commits its events with, and one without events. */
    const ponderCommits = async () => {
      const ponder = await connectAs("ponder_writer", "p");
      // What Ponder's pool does on every connection (Ponder 0.17.7, utils/pg.ts).
      await ponder.query("SET synchronous_commit = off");
      const setting = async () =>
        (await ponder.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]?.s;
      await ponder.query("BEGIN");
      expect(await setting()).toBe("off");
      await ponder.query(
        `INSERT INTO "${SCHEMA}".stake_event (id, chain_id, developer, kind, amount, block_number, block_timestamp, transaction_hash, log_index)
         VALUES ('x', 31337, $1, 'staked', $2, 50, 1, '0x01', 0)`,
        [wallet(0xf1), (5n * USDC).toString()],
      );
      const withEvents = await setting();
      await ponder.query("ROLLBACK");
      // A transaction that does not touch the events keeps Ponder's setting.
      await ponder.query("BEGIN");
      await ponder.query(`SELECT 1 FROM "${SCHEMA}".stake_event LIMIT 1`);
      const without = await setting();
      await ponder.query("ROLLBACK");
      return { withEvents, without };
    };
    // This cluster runs with synchronous_commit off (a throwaway test cluster): at least the local
    // WAL flush, lost to a crash no more.
    expect(await ponderCommits()).toEqual({ withEvents: "local", without: "off" });
    // A server whose sessions commit with more (synchronous standbys named, so that a failover
    // loses no commit): Ponder's events too, where before only local (a failover took back its
    // last blocks while it ran on).
    await fake.db.query(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = remote_write', current_database()); END $$",
    );
    expect(await ponderCommits()).toEqual({ withEvents: "remote_write", without: "off" });
  } finally {
    await fake.db.query(`DROP OWNED BY ponder_writer; DROP ROLE ponder_writer`);
  }
  // Put on once, however often looked up.
  const oid = (
    await fake.db.query<{ oid: string }>("SELECT to_regclass($1)::oid::text AS oid", [`"${SCHEMA}".stake_event`])
  ).rows[0]?.oid as string;
  expect(await makeCommitsDurable(fake.db, oid)).toBeNull();
  expect(await triggers()).toBe(1);
});

it("says why when the sidecar's role may not put it on, without queueing Ponder's writes behind the try, and puts it on once a grant lets it", async () => {
  fake = await fakePonder();
  await fake.db.query(`CREATE ROLE reader_only LOGIN PASSWORD 'r';
    GRANT USAGE ON SCHEMA "${SCHEMA}", stakesync TO reader_only; GRANT SELECT ON "${SCHEMA}".stake_event TO reader_only`);
  try {
    const sidecar = await connectAs("reader_only", "r");
    const rel = (await relOf(SCHEMA)) as string;
    // Ponder's transaction in flight: CREATE TRIGGER would wait for it (and Ponder's next writes
    // behind that) before it found the privilege missing; the look comes first.
    const ponder = new pg.Client({ connectionString: fake.url });
    await ponder.connect();
    clients.push(ponder);
    await ponder.query(`BEGIN; LOCK TABLE "${SCHEMA}".stake_event IN ROW EXCLUSIVE MODE`);
    expect(await makeCommitsDurable(sidecar, rel)).toMatchObject({
      code: "42501",
      message: expect.stringContaining("permission denied for table"),
    });
    await ponder.query("COMMIT");
    expect(await triggers()).toBe(0);
    // The connection is usable after: the failed transaction was rolled back.
    expect((await sidecar.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);

    // As the loop keeps it: refused, and tried again a while later, not at every round.
    const durability = newDurability();
    const sources = [{ schema: SCHEMA, rel, ready: true }];
    await keepDurable(sidecar, durability, sources);
    expect([...durability.refused.keys()]).toEqual([SCHEMA]);
    // A minute on the monotonic clock, which a wall clock stepped back does not put off.
    expect(durability.retryAt.get(SCHEMA)).toBeGreaterThan(performance.now() + REFUSED_RETRY_MS / 2);
    expect(durability.retryAt.get(SCHEMA)).toBeLessThanOrEqual(performance.now() + REFUSED_RETRY_MS);
    // The operator grants it (docs/operations.md's upgrade grant): the next try, no restart.
    await fake.db.query(`GRANT TRIGGER ON "${SCHEMA}".stake_event TO reader_only`);
    await keepDurable(sidecar, durability, sources);
    expect(await triggers()).toBe(0); // not due yet
    durability.retryAt.clear(); // its wait over
    await keepDurable(sidecar, durability, sources);
    expect(await triggers()).toBe(1);
    expect(durability.refused.size).toBe(0);
  } finally {
    await fake.db.query(`DROP OWNED BY reader_only; DROP ROLE reader_only`);
  }
});

it("makes every instance's commits durable, PONDER_REPLICA_SCHEMAS too, not only the one read", async () => {
  fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: "ponder_replica" });
  await fake.index([], 12);
  await fake.replica("ponder_replica").index([], 12);
  await fake.round();
  // Before: the replica's were not, and a crash's hole in it, read later, looked like a reorg.
  expect([await triggers(SCHEMA), await triggers("ponder_replica")]).toEqual([1, 1]);
});

it("makes a redeployed views schema's new table durable, and drops the old table's reorg trigger as a baseline", async () => {
  fake = await fakePonder();
  const watch = newReorgWatch();
  const oid = async (name: string) =>
    (await fake.db.query<{ oid: string }>("SELECT to_regclass($1)::oid::text AS oid", [name])).rows[0]?.oid;
  await fake.db.query(`CREATE SCHEMA views; CREATE VIEW views.stake_event AS SELECT * FROM ${SCHEMA}.stake_event;
    CREATE SCHEMA deployment_b; CREATE TABLE deployment_b.stake_event (LIKE ${SCHEMA}.stake_event)`);
  const progress = async (reorgs: string | null) => progressOnChain({ reorgs, rel: await oid("views.stake_event") });
  expect(await reorgTable(fake.db, watch, "views")).toBe(await oid(`${SCHEMA}.stake_event`));
  reorgHeld(watch, "views", await progress("1"));
  // The redeploy: the views made anew over the new deployment's tables, ready at once.
  await fake.db.query(
    "BEGIN; DROP VIEW views.stake_event; CREATE VIEW views.stake_event AS SELECT * FROM deployment_b.stake_event; COMMIT",
  );
  // This step still read the old table's trigger: no hold, and no baseline from it.
  expect(reorgHeld(watch, "views", await progress("1"))).toEqual(new Set());
  expect(await reorgTable(fake.db, watch, "views")).toBe(await oid("deployment_b.stake_event"));
  // Before: the old table kept for the term; the new deployment's commits never made durable.
  const { rows } = await fake.db.query(
    "SELECT 1 FROM pg_trigger WHERE tgrelid = 'deployment_b.stake_event'::regclass AND tgname = $1",
    [DURABLE_TRIGGER],
  );
  expect(rows).toHaveLength(1);
  // The new table's trigger is the baseline: a step with it holds nothing.
  expect(reorgHeld(watch, "views", await progress("2"))).toEqual(new Set());
});

it("leaves an instance that backfills alone, and after a lock wait run out waits before it tries again, so that Ponder's writes do not queue behind it at every round", async () => {
  fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: "ponder_replica" });
  await fake.index([], 12);
  const replica = fake.replica("ponder_replica");
  await replica.index([], 12);
  await replica.progress({ latest: 12, safe: 5, finalized: 5, ready: false });
  await fake.round();
  // Backfilling: its batches hold the table for seconds; before, each round's try waited for them.
  expect(await triggers("ponder_replica")).toBe(0);

  // Ready, but a transaction of Ponder's holds the table: one short try, then none for a while.
  await replica.progress({ latest: 12, safe: 12, finalized: 5, ready: true });
  const ponder = new pg.Client({ connectionString: fake.url });
  await ponder.connect();
  clients.push(ponder);
  await ponder.query(`BEGIN; LOCK TABLE "ponder_replica".stake_event IN ROW EXCLUSIVE MODE`);
  const durability = newDurability();
  const sources = [{ schema: "ponder_replica", rel: await relOf("ponder_replica"), ready: true }];
  await keepDurable(fake.db, durability, sources);
  const next = durability.retryAt.get("ponder_replica");
  expect(next).toBeGreaterThan(performance.now());
  expect(next).toBeLessThanOrEqual(performance.now() + 10_000); // monotonic, as above
  await keepDurable(fake.db, durability, sources);
  expect(durability.retryAt.get("ponder_replica")).toBe(next); // not tried again yet
  await ponder.query("COMMIT");
  expect(await triggers("ponder_replica")).toBe(0);
  durability.retryAt.clear(); // its wait over
  await keepDurable(fake.db, durability, sources);
  expect(await triggers("ponder_replica")).toBe(1);
});

async function relOf(schema: string) {
  return (await fake.db.query<{ oid: string }>("SELECT to_regclass($1)::oid::text AS oid", [`"${schema}".stake_event`]))
    .rows[0]?.oid;
}

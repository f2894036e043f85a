/**
 * A leader gone in the middle of a wait for the application's lock on developers (a migration,
 * or one queued behind a long transaction): another sidecar leads within seconds, while the
 * migration still holds the table. The waits go in slices (lock-developers.ts): between two, a
 * frozen leader's session is idle, and the server ends it (leader.ts, its silence limit). A wait
 * in one piece kept the session busy, so the server ended it only once the migration did, and no
 * sidecar could lead, send or page until then.
 *
 * And a leader killed in the middle of any long statement: the server checks that its client is
 * still there while the statement runs (leader.ts, client_connection_check_interval).
 *
 * "Frozen": the leader's socket no longer read, its process sending nothing more, as a SIGSTOP
 * leaves it (the kernel still answers the server's keepalives). "Killed": its socket closed.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { connectWriter, type LeaderConnection, tryLeaderLock } from "../../sidecar/leader";
import { applyDevelopers } from "../../sidecar/sync/apply-developers";
import { developersBusy } from "../../sidecar/sync/sql/lock-developers";
import { syncStep } from "../../sidecar/sync/step";
import { applicationTransaction, CHAIN, type Fake, fakePonder, SCHEMA, USDC, wallet } from "./ponder-fake";

let fake: Fake | undefined;
const ends: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end().catch(() => undefined);
  await fake?.close();
});

/** A sidecar's leader connection, as acquireLeadership makes it, holding the leader lock. */
async function leader(url: string): Promise<LeaderConnection> {
  const connection = await connectWriter(url);
  ends.push(() => connection.client.end());
  expect(await tryLeaderLock(connection.client)).toBe("taken");
  return connection;
}

/** Another sidecar's tries to lead, one every 250 ms, until one takes the lock: how long that took. */
async function standbyTakesOver(url: string): Promise<number> {
  const standby = await connectWriter(url);
  ends.push(() => standby.client.end());
  const since = performance.now();
  await waitFor("the standby to lead", async () => (await tryLeaderLock(standby.client)) === "taken", {
    timeoutMs: 15_000,
    intervalMs: 250,
  });
  return performance.now() - since;
}

/** Whether `app`'s transaction still holds a lock on developers. */
async function stillHolds(app: pg.Client) {
  const { rows } = await app.query(
    "SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'developers'::regclass AND granted",
  );
  return rows[0]?.n > 0;
}

/** The leader's session waits for a lock (pg_stat_activity), asked over `db`. */
const waitsForALock = async (db: pg.Client, pid: number) =>
  (await db.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [pid])).rowCount === 1;

const waits = {
  /** The step's first statement takes developers (ACCESS SHARE): an ALTER TABLE holds it off. */
  step: {
    lock: "LOCK TABLE developers IN ACCESS EXCLUSIVE MODE",
    start: (f: Fake, db: pg.Client) =>
      syncStep(db, f.config, new Map(), { heads: new Map([[CHAIN, { block: 30, at: Date.now() }]]), catchUp: "due" }),
  },
  /** The queue's write takes developers' rows (ROW EXCLUSIVE): a CREATE INDEX's SHARE lock holds it off. */
  write: {
    lock: "LOCK TABLE developers IN SHARE MODE",
    start: (f: Fake, db: pg.Client) => applyDevelopers(db, f.config, [wallet(0x77)]),
  },
} as const;

for (const [what, { lock, start }] of Object.entries(waits)) {
  for (const gone of ["frozen", "killed"] as const) {
    it(`lets another sidecar lead within seconds of a leader ${gone} while ${what === "step" ? "its step" : "its developers write"} waits for an application's migration`, async () => {
      fake = await fakePonder();
      const f = fake;
      await f.register(wallet(0x77), "dev@example.com");
      await f.index([{ developer: wallet(0x77), amount: 5n * USDC, block: 10 }], 12);
      // The write's case: a developer queued (its step committed, its row held by the
      // application meanwhile), whose write then waits.
      if (what === "write") {
        const holder = await applicationTransaction(f.url, "SELECT 1 FROM developers FOR UPDATE");
        expect((await f.round()).held).toBe(1);
        await holder.end();
      }
      const { client, pid } = await leader(f.url);
      const app = await applicationTransaction(f.url, lock);
      ends.push(() => app.end());
      start(f, client).catch(() => undefined);
      await waitFor("the leader waiting for the application's lock", () => waitsForALock(f.db, pid));

      const stream = (client as unknown as { connection: { stream: { pause(): void; destroy(): void } } }).connection
        .stream;
      if (gone === "frozen") stream.pause();
      else stream.destroy();
      const tookMs = await standbyTakesOver(f.url);
      // The migration still holds the table: the lock was freed by the server ending the gone
      // leader's session, not by the migration ending.
      expect(await stillHolds(app)).toBe(true);
      // The server's silence limit (4 s) after a slice (1 s), and the tries' pace; well within
      // the 15 s a standby has to take over.
      expect(tookMs).toBeLessThan(15_000);
    });
  }
}

it("lets another sidecar lead within seconds of a leader killed in the middle of a long statement (a catch-up's)", async () => {
  fake = await fakePonder();
  const { client, pid } = await leader(fake.url);
  // A statement that would run for a minute: the server sees the client gone while it runs
  // (client_connection_check_interval), not once it ends.
  client.query("SELECT pg_sleep(60)").catch(() => undefined);
  const f = fake;
  await waitFor("the statement running", async () => {
    const { rows } = await f.db.query("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]);
    return rows[0]?.state === "active";
  });
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  expect(await standbyTakesOver(fake.url)).toBeLessThan(15_000);
});

it("counts a statement timeout of the step's first round trip that is not its wait for developers as the error it is", async () => {
  fake = await fakePonder();
  const f = fake;
  await f.index([{ developer: wallet(0x78), amount: 5n * USDC, block: 10 }], 12);
  // A role's statement_timeout shorter than the step's wait for Ponder's tables, and a Ponder
  // frozen inside its reorg transaction, which holds stake_event.
  const client = new pg.Client({ connectionString: f.url, options: "-c statement_timeout=500" });
  await client.connect();
  ends.push(() => client.end());
  const ponder = await applicationTransaction(f.url, `LOCK TABLE ${SCHEMA}.stake_event IN ACCESS EXCLUSIVE MODE`);
  ends.push(() => ponder.end());
  const error = await syncStep(client, f.config, new Map(), {
    heads: new Map([[CHAIN, { block: 30, at: Date.now() }]]),
    catchUp: "due",
    ponderSeen: true,
  }).catch((e: unknown) => e);
  expect((error as { code?: string }).code).toBe("57014");
  // Before, any statement timeout of that round trip was taken for a slice of the wait for
  // developers: no error counted, and the log blamed an application's migration.
  expect(developersBusy(error)).toBe(false);
});

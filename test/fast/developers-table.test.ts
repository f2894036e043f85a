/**
 * Adopting the application's developers table at start (sidecar/db/developers-table.ts, migrate.ts)
 * beside the application's own transactions: what it refuses, what it builds, and that nothing
 * it does at start holds the application's writes or waits for good.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { parseTableName, type TableName } from "../../lib/config";
import { waitFor } from "../../lib/wait";
import { DevelopersTableError, ensureDevelopersTable, walletIndexed } from "../../sidecar/db/developers-table";
import { LOCKS } from "../../sidecar/db/locks";
import { migrate } from "../../sidecar/db/migrate";
import { LEADER_LOCK } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { applicationTransaction, type Fake, fakePonder, wallet } from "./ponder-fake";

let fake: Fake;
const clients: pg.Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.end().catch(() => undefined);
  await fake?.close();
});

const log = createLogger("silent");
const table = parseTableName("app.devs") as TableName;

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: fake.url });
  await c.connect();
  clients.push(c);
  return c;
}

/** The application's table as the sidecar wants it, with rows and without the sidecar's indexes. */
async function applicationTable(
  columns = "email text, status text NOT NULL DEFAULT 'pending', stake_amount numeric NOT NULL DEFAULT 0, staked_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now()",
) {
  await fake.db.query(`DROP SCHEMA IF EXISTS app CASCADE; CREATE SCHEMA app;
    CREATE TABLE app.devs (id bigserial PRIMARY KEY, wallet_address text NOT NULL UNIQUE${columns ? `, ${columns}` : ""});
    INSERT INTO app.devs (wallet_address) SELECT '0x' || lpad(to_hex(g), 40, '0') FROM generate_series(1, 1000) g`);
}

/** An application transaction that wrote a row and stays open: an index build waits for it. */
async function openWrite(n: number): Promise<pg.Client> {
  const open = await applicationTransaction(fake.url, "INSERT INTO app.devs (wallet_address) VALUES ($1)", [
    wallet(0xa0000 + n),
  ]);
  clients.push(open);
  return open;
}

/** `migrate` on a client of its own (`prepare`d first), once its index build waits for a lock. */
async function migrateWaiting(options: { lockWaitMs?: number } = {}, prepare?: (c: pg.Client) => Promise<unknown>) {
  const m = await client();
  await prepare?.(m);
  const pid = (await m.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
  const migrating = migrate(m, table, log, options);
  migrating.catch(() => undefined);
  await waitFor("the build waiting for a lock", async () => {
    const { rows } = await fake.db.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [pid]);
    return rows[0]?.wait_event_type === "Lock";
  });
  return { migrating, pid };
}

/** The sidecar's indexes on the table (named *_idx), and whether each is valid. */
async function sidecarIndexes() {
  const { rows } = await fake.db.query(
    `SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'app.devs'::regclass AND c.relname LIKE '%_idx' ORDER BY 1`,
  );
  return rows;
}

it("refuses an existing table without the application's email or wallet_address column, naming it, and adds nothing", async () => {
  fake = await fakePonder();
  await applicationTable("");
  const m = await client();
  await expect(migrate(m, table, log)).rejects.toThrow(DevelopersTableError);
  await expect(migrate(m, table, log)).rejects.toThrow(/app\.devs: column email is missing; stakesync needs text/);
  const { rows } = await fake.db.query(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'devs' ORDER BY 1",
  );
  // Added, an empty email column marked every welcome 'no_email', for good.
  expect(rows.map((r) => r.column_name)).toEqual(["id", "wallet_address"]);
  // Without wallet_address, each start failed on its index and went round for good.
  await fake.db.query("DROP TABLE app.devs; CREATE TABLE app.devs (id bigserial PRIMARY KEY, wallet text, email text)");
  await expect(migrate(m, table, log)).rejects.toThrow(/app\.devs: column wallet_address is missing/);
});

it("builds the missing indexes without holding the application's writes, waiting for its open transactions", async () => {
  fake = await fakePonder();
  await applicationTable();
  // An application transaction that wrote a row and stays open past the migration's lock bound.
  const open = await openWrite(1);
  const { migrating } = await migrateWaiting({ lockWaitMs: 300 });
  // Past the migration's lock bound (5 s; 300 ms here): a build inside its transaction gave up on
  // the table's SHARE lock here (55P03), and the sidecar's start went round again for as long as
  // the transaction lasted.
  await new Promise((resolve) => setTimeout(resolve, 600));
  // Meanwhile the application writes: a build in the migration's transaction held them all.
  const writer = await client();
  await writer.query("SET lock_timeout = '2s'");
  await writer.query("INSERT INTO app.devs (wallet_address) VALUES ($1)", [wallet(0xa0002)]);
  await open.query("COMMIT");
  await migrating;
  expect(await walletIndexed(fake.db, table)).toBe(true);
  const { rows } = await fake.db.query(
    "SELECT indexname FROM pg_indexes WHERE schemaname = 'app' AND tablename = 'devs' ORDER BY 1",
  );
  expect(rows.map((r) => r.indexname)).toEqual([
    "devs_pending_idx",
    "devs_pkey",
    "devs_wallet_address_key",
    "devs_wallet_lower_idx",
  ]);
});

it("builds no second index on lower(wallet_address) beside the application's own of another name", async () => {
  fake = await fakePonder();
  await applicationTable();
  await fake.db.query("CREATE INDEX app_wallet_ci ON app.devs (lower(wallet_address))");
  await migrate(await client(), table, log);
  const { rows } = await fake.db.query(
    "SELECT indexname FROM pg_indexes WHERE schemaname = 'app' AND tablename = 'devs' AND indexdef LIKE '%lower(wallet_address)%'",
  );
  expect(rows.map((r) => r.indexname)).toEqual(["app_wallet_ci"]);
});

it("gives up waiting for the migration lock after its bound, to try again, when another session holds it idle", async () => {
  fake = await fakePonder();
  // A sidecar frozen inside its migration: its session holds the lock, idle in its transaction.
  const frozen = await applicationTransaction(fake.url, "SELECT pg_advisory_xact_lock(7263001)");
  clients.push(frozen);
  const m = await client();
  await expect(migrate(m, table, log, { lockWaitMs: 300 })).rejects.toMatchObject({ code: "55P03" });
  // And the session is left as it was found.
  expect((await m.query("SHOW lock_timeout")).rows[0]?.lock_timeout).toBe("0");
});

it("builds the indexes once when two sidecars start together, neither killing the other's build", async () => {
  fake = await fakePonder();
  await applicationTable();
  const open = await openWrite(3);
  const { migrating: first } = await migrateWaiting();
  // b starts meanwhile: before, its drop of a's build in progress (taken for a leftover)
  // deadlocked with it, or its own build left the index invalid.
  await migrate(await client(), table, log);
  await open.query("COMMIT");
  await first;
  expect(await sidecarIndexes()).toEqual([
    { relname: "devs_pending_idx", indisvalid: true },
    { relname: "devs_wallet_lower_idx", indisvalid: true },
  ]);
});

it("drops an invalid leftover of its own beside the application's index, and rebuilds one where none is", async () => {
  fake = await fakePonder();
  await applicationTable();
  await migrate(await client(), table, log);
  // Two failed builds' leftovers (a crash, a cancel): invalid indexes.
  await fake.db.query(`UPDATE pg_index SET indisvalid = false
    WHERE indexrelid IN ('app.devs_wallet_lower_idx'::regclass, 'app.devs_pending_idx'::regclass)`);
  await fake.db.query("CREATE INDEX app_wallet_ci ON app.devs (lower(wallet_address))");
  await migrate(await client(), table, log);
  const { rows } = await fake.db.query(
    `SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'app.devs'::regclass AND c.relname NOT LIKE '%key' ORDER BY 1`,
  );
  expect(rows).toEqual([
    { relname: "app_wallet_ci", indisvalid: true },
    { relname: "devs_pending_idx", indisvalid: true },
  ]);
});

it("builds past the session's statement_timeout: a build cancelled leaves an invalid index behind", async () => {
  fake = await fakePonder();
  await applicationTable();
  const open = await openWrite(4);
  const { migrating } = await migrateWaiting({}, (m) => m.query("SET statement_timeout = '100ms'"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await open.query("COMMIT");
  await migrating;
  expect(await walletIndexed(fake.db, table)).toBe(true);
});

it("builds the indexes while another sidecar leads (the leader's lock is not the build's)", async () => {
  fake = await fakePonder();
  await applicationTable();
  const leader = await client();
  await leader.query("SELECT pg_advisory_lock($1)", [LEADER_LOCK]);
  await migrate(await client(), table, log);
  expect(await walletIndexed(fake.db, table)).toBe(true);
  // And the build's lock is free again.
  const { rows } = await fake.db.query(
    "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
    [LOCKS.indexBuild],
  );
  expect(rows[0]?.n).toBe(0);
});

it("starts without an index whose build fails (cancelled), instead of retrying the start for good", async () => {
  fake = await fakePonder();
  await applicationTable();
  const open = await openWrite(5);
  const { migrating, pid } = await migrateWaiting();
  await fake.db.query("SELECT pg_cancel_backend($1)", [pid]);
  await open.query("COMMIT");
  await migrating;
  // The cancelled build's invalid index is gone; the other index is built.
  expect(await sidecarIndexes()).toEqual([{ relname: "devs_pending_idx", indisvalid: true }]);
});

it("says the sidecar's role cannot see the table or a column, instead of taking it for missing", async () => {
  fake = await fakePonder();
  await applicationTable();
  await fake.db.query(`CREATE ROLE devs_reader LOGIN PASSWORD 'r'; GRANT USAGE ON SCHEMA app TO devs_reader`);
  const url = new URL(fake.url);
  url.username = "devs_reader";
  url.password = "r";
  const restricted = new pg.Client({ connectionString: url.toString() });
  await restricted.connect();
  clients.push(restricted);
  const ensure = async () => {
    await restricted.query("BEGIN");
    try {
      return await ensureDevelopersTable(restricted, table).catch((error: Error) => error);
    } finally {
      await restricted.query("ROLLBACK");
    }
  };
  try {
    // No grant on the table: before, taken for missing, then "permission denied for schema app"
    // at its CREATE, retried for good and paged as the database unreachable.
    expect(String(await ensure())).toBe(
      `DevelopersTableError: DEVELOPERS_TABLE app.devs: the sidecar's role cannot see column(s) wallet_address, email, status, stake_amount, staked_at, updated_at (its privileges): grant it SELECT ON "app"."devs", and UPDATE on the sidecar's columns, as docs/sql/roles.sql does`,
    );
    // Column grants without status: before, "column status is missing".
    await fake.db.query(
      "GRANT SELECT (wallet_address, email, stake_amount, staked_at, updated_at) ON app.devs TO devs_reader",
    );
    expect(String(await ensure())).toMatch(/cannot see column\(s\) status \(its privileges\)/);
  } finally {
    await fake.db.query("DROP OWNED BY devs_reader; DROP ROLE devs_reader");
  }
});

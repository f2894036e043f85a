/**
 * Ponder's tables as the sidecar reads them, fabricated in a fresh database: stake_event,
 * _ponder_checkpoint and _ponder_meta with Ponder's column names and checkpoint layout (pinned
 * against the real Ponder by test/ponder-internals). A test writes what Ponder would have
 * written (events, a reorg's deletions, a crash recovery, a later checkpoint) and runs the
 * sidecar's own operations on it, in milliseconds.
 */

import pg from "pg";
import { expect, inject } from "vitest";
import { loadSidecarConfig, type SidecarConfig } from "../../lib/config";
import { queryOnce } from "../../lib/query-once";
import type { Head } from "../../sidecar/chain-heads";
import { walletIndexed } from "../../sidecar/db/developers-table";
import { migrate } from "../../sidecar/db/migrate";
import { lastRows } from "../../sidecar/db/together";
import { Alerts } from "../../sidecar/effects/alerts";
import { type AppDeps, createApp } from "../../sidecar/http/app";
import { LEADER_LOCK } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import { type Applied, applyDevelopers } from "../../sidecar/sync/apply-developers";
import { followSource, newWatch, noteTakenBack, startWatch } from "../../sidecar/sync/choose-source";
import { SyncLoop } from "../../sidecar/sync/loop";
import { newReorgWatch } from "../../sidecar/sync/reorg-watch";
import { checkpointBlock } from "../../sidecar/sync/sql/fragments";
import { type CatchUp, type RemovalGuard, type StepResult, syncStep } from "../../sidecar/sync/step";

export const SCHEMA = "ponder_fake";
/** 1 USDC in raw units (6 decimals). */
export const USDC = 1_000_000n;
export const CHAIN = 31337;
const pad = (n: number | bigint, width: number) => n.toString().padStart(width, "0");

/** A 75-digit checkpoint: timestamp, chain id, block number, transaction index, type, event index. */
export function checkpoint(block: number, { chainId = CHAIN, tx = 9_999_999_999_999_999n, index = 0 } = {}) {
  return `${pad(1_700_000_000 + block * 12, 10)}${pad(chainId, 16)}${pad(block, 16)}${pad(tx, 16)}5${pad(index, 16)}`;
}

export type FakeEvent = {
  developer: string;
  kind?: "staked" | "unstaked" | "slashed";
  amount: bigint;
  block: number;
  log?: number;
  tx?: string;
};

export type Fake = {
  url: string;
  db: pg.Client;
  /**
   * A pool on the fake's database, made at the first call and ended with the fake: what the
   * sidecar's reads take in production (readStatus, the HTTP app), which send reads at once. On
   * `db`, one client, pg warns that concurrent queries on a client end with pg 9.
   */
  pool: () => pg.Pool;
  config: SidecarConfig;
  /** One round of the leader's loop: a sync step, then the developers write. */
  round: (options?: {
    reconcile?: boolean;
    writeInStep?: boolean;
    /** False: the diff in a round trip of its own (step.ts, plainBlock). */
    plainBlock?: boolean;
    writeInStepMaxMs?: number;
    /** What the loop allows while Ponder backfills: "due" (whatever the window) unless told. */
    catchUp?: CatchUp;
    /** The chain's head the sidecar polled; by default what Ponder has indexed. */
    head?: number;
  }) => Promise<Applied & { step: StepResult }>;
  /** Ponder commits events (in their blocks) and, unless told otherwise, its checkpoint. */
  index: (events: FakeEvent[], head?: number) => Promise<void>;
  /** Ponder's checkpoint row and readiness. */
  progress: (p: { latest: number; safe?: number; finalized?: number; ready?: boolean }) => Promise<void>;
  /** Ponder deleting rows (a reorg's or a crash recovery's), leaving the checkpoint alone. */
  deleteAbove: (block: number) => Promise<void>;
  /** Another Ponder instance's tables (a schema of PONDER_REPLICA_SCHEMAS). */
  replica: (schema: string) => PonderTables;
  /** The schema the last round read. */
  source: () => string;
  /**
   * A new term as leader (another sidecar, or this one after losing its session); with `env`, one
   * whose settings differ by these variables (a deploy that changed them).
   */
  newTerm: (env?: Record<string, string>) => Promise<void>;
  register: (wallet: string, email?: string | null) => Promise<void>;
  developer: (wallet: string) => Promise<{ status: string; stake_amount: string; staked_at: Date | null } | undefined>;
  audit: (wallet: string) => Promise<string[]>;
  close: () => Promise<void>;
};

let databases = 0;

/**
 * Databases whose fake has closed, in this vitest worker (its files share this module, see
 * vitest.config.ts). CREATE DATABASE costs the server 0.2–0.3 s (a copy of template1), most of a
 * fake's setup; a closed fake's database is used again instead, emptied: every schema dropped, public made again as a new database has it, its own settings
 * reset (a test may ALTER DATABASE). Only once nothing is connected to it: a client a test left
 * open, or a session still ending, keeps it aside, and a new database is made.
 */
const closed: string[] = [];

const EMPTIED = `DO $$ DECLARE s text; BEGIN
    FOR s IN SELECT nspname FROM pg_namespace
              WHERE nspname NOT IN ('pg_catalog', 'information_schema')
                AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
    LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP;
  END $$;
  CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC`;

async function takeDatabase(admin: string): Promise<{ name: string; reused: boolean }> {
  // Taken off the list while asked about: two fakes made at once never get the same one.
  const candidates = closed.splice(0);
  const [idle] = candidates.length
    ? await queryOnce<{ name: string }>(
        admin,
        `SELECT name FROM unnest($1::text[]) AS name
          WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = name) LIMIT 1`,
        [candidates],
      )
    : [];
  closed.push(...candidates.filter((c) => c !== idle?.name));
  if (idle) {
    await queryOnce(admin, `ALTER DATABASE ${idle.name} RESET ALL`);
    return { name: idle.name, reused: true };
  }
  const name = `fast_${process.pid}_${databases++}_${Math.random().toString(36).slice(2, 8)}`;
  await queryOnce(admin, `CREATE DATABASE ${name}`);
  return { name, reused: false };
}

export async function fakePonder(env: Record<string, string> = {}): Promise<Fake> {
  const port = inject("postgresPort");
  const { name, reused } = await takeDatabase(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres`);
  const url = `postgresql://postgres:postgres@127.0.0.1:${port}/${name}`;
  const settings = {
    CHAIN_ID: String(CHAIN),
    RPC_URL: "http://127.0.0.1:1",
    STAKE_VAULT_ADDRESS: `0x${"1".repeat(40)}`,
    START_BLOCK: "1",
    DATABASE_URL: url,
    DATABASE_SCHEMA: SCHEMA,
    CONFIRMATIONS: "2",
    ...env,
  };
  let config = loadSidecarConfig(settings);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  if (reused) await db.query(EMPTIED);
  const primary = await ponderTables(db, SCHEMA);
  const replicas = new Map<string, PonderTables>();
  for (const schema of config.ponderReplicaSchemas) replicas.set(schema, await ponderTables(db, schema));
  await migrate(db, config.developersTable, createLogger("error"));

  const guard: RemovalGuard = new Map();
  let reorgWatch = newReorgWatch();
  // As the loop at the start of a term: the wallet index looked up once.
  const source: {
    schema: string;
    watch: ReturnType<typeof newWatch>;
    seenIn?: string;
    walletIndexed: boolean;
    head: number;
  } = {
    head: 0,
    schema: config.ponderSchema,
    watch: newWatch(),
    walletIndexed: await walletIndexed(db, config.developersTable),
  };
  let ended = false;
  let pool: pg.Pool | undefined;
  return {
    url,
    db,
    pool: () => {
      pool ??= new pg.Pool({ connectionString: url, max: 4 });
      return pool;
    },
    get config() {
      return config;
    },
    round: async ({
      reconcile = false,
      writeInStep = true,
      plainBlock,
      writeInStepMaxMs,
      catchUp = "due",
      head,
    } = {}) => {
      const read = await followSource(db, config, source.schema, guard, source.watch, reorgWatch.durable);
      source.schema = read.ponderSchema;
      // The head is what the instance read has indexed: nothing to wait for, as in realtime. The
      // sidecar polls it over RPC, whatever holds Ponder's tables: while a test's session holds
      // them, the last head read.
      const rows = await lastRows<{ block: string }>(db, [
        "SET LOCAL lock_timeout = '100ms'",
        `SELECT ${checkpointBlock("latest_checkpoint")} AS block FROM "${read.ponderSchema}"._ponder_checkpoint`,
      ]).catch(() => undefined);
      if (rows) source.head = Number(rows[0]?.block ?? 0);
      const heads = new Map([[CHAIN, { block: head ?? source.head, at: Date.now() }]]);
      // As the loop: Ponder's progress read with the BEGIN once a step found its tables there.
      const ponderSeen = source.seenIn === read.ponderSchema;
      const step = await syncStep(db, read, guard, {
        reconcile,
        heads,
        catchUp,
        ponderSeen,
        walletIndexed: source.walletIndexed,
        writeInStep,
        plainBlock,
        writeInStepMaxMs,
        reorgWatch,
        onTakeBack: (tx, chains) => noteTakenBack(tx, config, source.watch, read.ponderSchema, chains),
      });
      source.seenIn = step.kind === "waiting-for-ponder" ? undefined : read.ponderSchema;
      const pending = step.kind === "stepped" ? step.pending : undefined;
      const applied = await applyDevelopers(db, config, pending, { walletIndexed: source.walletIndexed });
      // As the loop: a bulk step's own changes first.
      const written = step.kind === "stepped" ? step.written : [];
      return { step, ...applied, changes: [...written, ...applied.changes] };
    },
    ...primary,
    replica: (schema) => {
      const tables = replicas.get(schema);
      if (!tables) throw new Error(`${schema} is not in PONDER_REPLICA_SCHEMAS`);
      return tables;
    },
    source: () => source.schema,
    newTerm: async (env) => {
      if (env) config = loadSidecarConfig({ ...settings, ...env });
      // As leadOn: the first instance, an empty guard, and what earlier terms left.
      source.schema = config.ponderSchema;
      source.watch = await startWatch(db, config);
      source.seenIn = undefined;
      source.walletIndexed = await walletIndexed(db, config.developersTable);
      guard.clear();
      reorgWatch = newReorgWatch();
    },
    register: async (wallet, email = null) => {
      await db.query("INSERT INTO developers (wallet_address, email) VALUES ($1, $2)", [wallet, email]);
    },
    developer: async (wallet) =>
      (
        await db.query(
          "SELECT status, stake_amount::text, staked_at FROM developers WHERE lower(wallet_address) = lower($1) LIMIT 1",
          [wallet],
        )
      ).rows[0],
    audit: async (wallet) =>
      (
        await db.query<{ line: string }>(
          "SELECT reason || ' ' || new_status || ' ' || new_amount::text AS line FROM stakesync.audit WHERE wallet = lower($1) ORDER BY id",
          [wallet],
        )
      ).rows.map((r) => r.line),
    // Listed once: a test may close a fake that afterEach closes again.
    close: async () => {
      if (ended) return;
      ended = true;
      await pool?.end();
      await db.end();
      closed.push(name);
    },
  };
}

/**
 * `count` staked events of 1 USDC Ponder committed long ago: event g in block 1 + g / perBlock, by
 * wallet number walletBase + g % wallets (ids sort before any event of `fake.index`).
 */
export async function pastEvents(
  on: Fake,
  count: number,
  { wallets = 20_000, perBlock = 200, walletBase = 65_536 } = {},
) {
  await on.db.query(
    `INSERT INTO ${SCHEMA}.stake_event
     SELECT lpad(g::text, 75, '0'), ${CHAIN}, '0x' || lpad(to_hex($2::int + g % $3::int), 40, '0'), 'staked', ${USDC},
            1 + g / $4::int, 1700000000 + g, '0x' || lpad(to_hex(g), 64, '0'), 0
       FROM generate_series(1, $1::int) g`,
    [count, walletBase, wallets, perBlock],
  );
}

/** One Ponder instance's tables in `schema`, and what that instance writes into them. */
export type PonderTables = Pick<Fake, "progress" | "index" | "deleteAbove">;

async function ponderTables(db: pg.Client, schema: string): Promise<PonderTables> {
  await db.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.stake_event (
      id text PRIMARY KEY, chain_id integer NOT NULL, developer text NOT NULL, kind text NOT NULL,
      amount numeric(78, 0) NOT NULL, block_number numeric(78, 0) NOT NULL, block_timestamp numeric(78, 0) NOT NULL,
      transaction_hash text NOT NULL, log_index integer NOT NULL);
    -- ponder.schema.ts's indexes, which Ponder creates once its backfill is done.
    CREATE INDEX ON ${schema}.stake_event (chain_id, developer, block_number);
    CREATE INDEX ON ${schema}.stake_event (chain_id, block_number);
    CREATE TABLE ${schema}._ponder_checkpoint (
      chain_name text PRIMARY KEY, chain_id bigint NOT NULL, safe_checkpoint varchar(75) NOT NULL,
      latest_checkpoint varchar(75) NOT NULL, finalized_checkpoint varchar(75) NOT NULL);
    CREATE TABLE ${schema}._ponder_meta (key text PRIMARY KEY, value jsonb);
    INSERT INTO ${schema}._ponder_meta VALUES ('app', '{"is_ready": 1, "is_locked": 1}');`);
  const progress: Fake["progress"] = async ({ latest, safe = latest, finalized = safe, ready = true }) => {
    await db.query(
      `INSERT INTO ${schema}._ponder_checkpoint VALUES ('chain', $1, $2, $3, $4)
       ON CONFLICT (chain_name) DO UPDATE SET safe_checkpoint = $2, latest_checkpoint = $3, finalized_checkpoint = $4`,
      [CHAIN, checkpoint(safe), checkpoint(latest), checkpoint(finalized)],
    );
    await db.query(
      `UPDATE ${schema}._ponder_meta SET value = jsonb_set(value, '{is_ready}', to_jsonb($1::int)) WHERE key = 'app'`,
      [ready ? 1 : 0],
    );
  };
  return {
    progress,
    index: async (events, head) => {
      for (const e of events) {
        const log = e.log ?? 0;
        await db.query(`INSERT INTO ${schema}.stake_event VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
          checkpoint(e.block, { tx: 0n, index: log }),
          CHAIN,
          e.developer,
          e.kind ?? "staked",
          e.amount.toString(),
          e.block,
          1_700_000_000 + e.block * 12,
          // The chain's: the same event has the same hash in every instance that indexes it.
          e.tx ?? `0x${pad(e.block, 16)}${pad(log, 8)}${e.developer.slice(2, 42).padStart(40, "0")}`,
          log,
        ]);
      }
      const latest = head ?? Math.max(...events.map((e) => e.block));
      await progress({ latest, safe: 0, finalized: 0 });
    },
    deleteAbove: async (block) => {
      await db.query(`DELETE FROM ${schema}.stake_event WHERE block_number > $1`, [block]);
    },
  };
}

/**
 * An application trigger on developers that refuses an UPDATE while `condition` (PL/pgSQL, on
 * NEW) holds; `when`, a trigger's WHEN clause. Dropped with `DROP TRIGGER refuse ON developers`.
 */
export async function refuseUpdates(on: Fake, condition = "true", when = "") {
  await on.db.query(`
    CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${condition} THEN RAISE EXCEPTION 'refused by the application'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse BEFORE UPDATE ON developers FOR EACH ROW ${when} EXECUTE FUNCTION refuse();`);
}

/** A session of the application's: `statement` run in its open transaction (a migration, a row held). */
export async function applicationTransaction(url: string, statement: string, values: unknown[] = []) {
  const app = new pg.Client({ connectionString: url });
  await app.connect();
  await app.query("BEGIN");
  await app.query(statement, values);
  return app;
}

/**
 * A round while an application transaction holds `held`'s row (`hold`, run on it; `before`, then
 * the round), which leaves it pending with a queue entry; then its COMMIT, and the round after,
 * which writes it. The caller states what the first round wrote.
 */
export async function roundsAroundHold(
  f: Fake,
  held: string,
  hold: string,
  before: () => Promise<unknown> = async () => {},
) {
  const app = await applicationTransaction(f.url, hold, [held]);
  let first: Awaited<ReturnType<Fake["round"]>>;
  try {
    await before();
    first = await f.round();
    expect(first.held).toBe(1);
    expect(await f.developer(held)).toMatchObject({ status: "pending" });
    await app.query("COMMIT");
  } finally {
    await app.end();
  }
  const second = await f.round();
  expect(second.changes.map((c) => c.wallet)).toEqual([held]);
  expect(await f.developer(held)).toMatchObject({ status: "active" });
  return { first, second };
}

/** The second chain of fakeOnTwoChains. */
export const BASE = 8453;

/**
 * A fake whose sidecar syncs two chains, CHAIN and BASE, BASE's checkpoint (as Ponder's
 * multichain ordering keeps one per chain) at block 30 with nothing indexed on it yet.
 */
export async function fakeOnTwoChains(env: Record<string, string> = {}): Promise<Fake> {
  const chain = (id: number) => ({
    [`RPC_URL_${id}`]: "http://127.0.0.1:1",
    [`STAKE_VAULT_ADDRESS_${id}`]: `0x${"1".repeat(40)}`,
    [`START_BLOCK_${id}`]: "1",
  });
  const fake = await fakePonder({ CHAINS: `${CHAIN},${BASE}`, ...chain(CHAIN), ...chain(BASE), ...env });
  await fake.db.query(`INSERT INTO ${SCHEMA}._ponder_checkpoint VALUES ('base', $1, $2, $2, $2)`, [
    BASE,
    checkpoint(30, { chainId: BASE }),
  ]);
  return fake;
}

/** Ponder's progress on CHAIN alone, as reorg-watch.ts gets it from a step's read. */
export const progressOnChain = ({
  ready = true,
  reorgs = null,
  rel,
}: {
  ready?: boolean;
  reorgs?: string | null;
  rel?: string | null;
} = {}) =>
  new Map([
    [
      CHAIN,
      { chainId: CHAIN, indexed: 1, latest: 1, finalized: 0, checkpoint: "c", ready, indexing: false, reorgs, rel },
    ],
  ]);

/** A wallet address from a small number, lowercase. */
/** Ponder's `reorg` trigger on `schema`'s stake_event, which its reorg transaction drops and creates again. */
export async function ponderReorgTrigger(db: pg.Client, schema: string) {
  await db.query(`
    CREATE FUNCTION "${schema}".operation_reorg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
    CREATE TRIGGER reorg AFTER INSERT ON "${schema}".stake_event FOR EACH ROW EXECUTE FUNCTION "${schema}".operation_reorg()`);
}

/**
 * Ponder's reorg transaction in `schema` to a head at `common` (a lagging provider's, taken for a
 * reorg): the rows above it deleted, its trigger made anew; its checkpoint is lowered only by its
 * next block's commit.
 */
export async function ponderReorgTransaction(db: pg.Client, schema: string, common: number) {
  await db.query(`BEGIN;
    DROP TRIGGER reorg ON "${schema}".stake_event;
    DELETE FROM "${schema}".stake_event WHERE block_number > ${common};
    CREATE TRIGGER reorg AFTER INSERT ON "${schema}".stake_event FOR EACH ROW EXECUTE FUNCTION "${schema}".operation_reorg();
    COMMIT`);
}

export const wallet = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;

/**
 * A session that holds the leader lock, as a leading sidecar's loop does: its backend pid is the
 * outbox's fence. The caller ends `client`.
 */
export async function leadingSession(url: string): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>("SELECT pg_advisory_lock($1), pg_backend_pid() AS pid", [
    LEADER_LOCK,
  ]);
  return { client, pid: rows[0]?.pid as number };
}

/**
 * What createApp and the effects take besides a pool, for a test on `config`: the chain's head at
 * `head`, alerts without a webhook (`firing()` says what fires), a loop never started, a standby
 * until the test sets its state, and the HTTP app on them (`appOn`).
 */
export function sidecarParts(config: SidecarConfig, { head = 30, repeatMs = 1000 } = {}) {
  const log = createLogger("error");
  const metrics = createMetrics([CHAIN]);
  const heads = new Map<number, Head>([[CHAIN, { block: head, at: Date.now() }]]);
  const alertOptions = { webhookUrl: undefined, repeatMs, retry: { attempts: 0, delayMs: 0 }, log, metrics };
  const alerts = new Alerts(alertOptions);
  /** The sidecar's own (main.ts): what it pages leader or not, the database out of reach. */
  const ownAlerts = new Alerts(alertOptions);
  const loop = new SyncLoop(config, log, metrics, heads);
  /** The sidecar's HTTP app on `pool` (and `probePool`), IndexerWatch's verdict from `indexer` (up unless told). */
  const appOn = (pool: pg.Pool, indexer: AppDeps["indexer"] = { down: () => null }, probePool?: pg.Pool) =>
    createApp({ config, pool, probePool, heads, indexer, loop, metrics, alerts, log });
  return { log, metrics, heads, alerts, ownAlerts, loop, appOn };
}

/** Everything the sync writes, as comparable rows: for tests that compare two ways to one outcome. */
export async function syncOutcome(f: Fake) {
  const rows = async (sql: string) => (await f.db.query(sql)).rows;
  return {
    developers: await rows(
      "SELECT lower(wallet_address) AS wallet, status, stake_amount::text, staked_at FROM developers ORDER BY 1",
    ),
    audit: await rows(
      `SELECT wallet, old_status, new_status, old_amount::text, new_amount::text, chain_id, block_number::text,
              transaction_hash, reason FROM stakesync.audit ORDER BY wallet, id`,
    ),
    outbox: await rows("SELECT kind, wallet, state, skip_reason FROM stakesync.outbox ORDER BY kind, wallet"),
    queue: await rows("SELECT wallet, state, reason FROM stakesync.developer_queue ORDER BY wallet"),
    stakes: await rows("SELECT wallet, chain_id, amount::text FROM stakesync.chain_stake ORDER BY 1, 2"),
    cursor: await rows("SELECT chain_id, block, final_block FROM stakesync.cursor ORDER BY 1"),
  };
}

/**
 * Ponder commits events g = from..to over `wallets` wallets (wallet(base + g % wallets)), 100 a
 * block from block 1 (block 1 + g / 100, its time 1700000000 + 12 · block): each wallet's k-th
 * event (k = g / wallets) a stake of 2 USDC, but for k = 3 and 8 (k % 5 = 3) an unstake of 1. A
 * wallet's running sum goes 2, 4, 6, 5, 7, …: it reaches 5 at its third event. Its checkpoint is
 * the caller's to set.
 */
export async function patternEvents(
  f: Fake,
  { from, to, wallets, base }: { from: number; to: number; wallets: number; base: number },
) {
  await f.db.query(
    `INSERT INTO ${SCHEMA}.stake_event
     SELECT lpad((1700000000 + b * 12)::text, 10, '0') || lpad('${CHAIN}', 16, '0') || lpad(b::text, 16, '0')
              || lpad(g::text, 16, '0') || '5' || lpad('0', 16, '0'),
            ${CHAIN}, '0x' || lpad(to_hex(${base} + g % ${wallets}), 40, '0'),
            CASE WHEN (g / ${wallets}) % 5 = 3 THEN 'unstaked' ELSE 'staked' END,
            CASE WHEN (g / ${wallets}) % 5 = 3 THEN 1000000 ELSE 2000000 END,
            b, 1700000000 + b * 12, '0x' || lpad(to_hex(g), 64, '0'), 0
       FROM generate_series(${from}, ${to}) g, LATERAL (SELECT 1 + g / 100 AS b) x`,
  );
}

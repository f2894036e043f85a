/**
 * The leader's loop (sidecar/sync/loop.ts) running in this process against fabricated Ponder
 * tables: what it keeps between rounds, and what it must forget when it stops seeing Ponder.
 */
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import pg from "pg";
import pino, { type Logger } from "pino";
import { afterEach, expect, it, onTestFinished, vi } from "vitest";
import { answeredWithin, waitFor } from "../../lib/wait";
import { createPools } from "../../sidecar/db/pools";
import type { Queryable } from "../../sidecar/db/queryable";
import { checkUnreachable } from "../../sidecar/effects/monitor";
import { connectWriter, holdsLeaderLock, LEADER_LOCK } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import { retryAfter, SyncLoop } from "../../sidecar/sync/loop";
import { CHAIN, type Fake, fakePonder, leadingSession, sidecarParts, USDC, wallet } from "./ponder-fake";

let fake: Fake;
let loop: SyncLoop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
  await fake?.close();
});

/** Resolves once the loop has committed `n` more rounds. */
async function rounds(n: number) {
  for (let i = 0; i < n; i++) {
    const before = loop?.state.lastSyncAt;
    await waitFor("a committed round", () => loop?.state.lastSyncAt !== before, { timeoutMs: 30_000, intervalMs: 5 });
  }
}

async function startLoop(env: Record<string, string> = {}, log: Logger = createLogger("silent")) {
  fake = await fakePonder({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10", ...env });
  const heads = new Map([[CHAIN, { block: 40, at: Date.now() }]]);
  loop = new SyncLoop(fake.config, log, createMetrics([CHAIN]), heads);
  loop.start();
  await waitFor("leadership", () => loop?.state.role === "leader", { timeoutMs: 30_000, intervalMs: 10 });
}

/** The stake applied, then seen missing by rounds: the first half of a provider's lag. */
async function stakeSeenMissing(w: string) {
  await fake.register(w);
  await fake.index([{ developer: w, amount: 30n * USDC, block: 24, tx: "0x24" }], 30);
  await waitFor("the stake applied", async () => (await fake.developer(w))?.stake_amount === "30.000000");
  // The provider lags to 22: Ponder deletes the rows above it under its checkpoint (30).
  await fake.deleteAbove(22);
  await rounds(2);
}

/**
 * Unseen by any round: Ponder lowers its checkpoint, indexes the same blocks again to 31, and
 * the provider lags again: the stake is missing under checkpoint 31.
 */
async function lagAgainUnseen(w: string) {
  await fake.progress({ latest: 22, finalized: 0 });
  await fake.index([{ developer: w, amount: 30n * USDC, block: 24, tx: "0x24" }], 31);
  await fake.deleteAbove(22);
}

/** The provider catches up: the same stake, and nothing was a reorg. */
async function expectNothingTakenBack(w: string) {
  await rounds(3);
  expect(loop?.state.consecutiveErrors).toBe(0);
  expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
  await fake.index([{ developer: w, amount: 30n * USDC, block: 24, tx: "0x24" }], 32);
  await rounds(2);
  expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
}

it("logs each step with its developers write apart: how long it took and how many rows it changed", async () => {
  const lines: Record<string, unknown>[] = [];
  await startLoop({}, pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) }));
  const [a, b, c] = [wallet(0x61), wallet(0x62), wallet(0x63)];
  for (const w of [a, b, c]) await fake.register(w);
  await fake.index(
    [
      { developer: a, amount: 30n * USDC, block: 24, tx: "0x61" },
      { developer: b, amount: 5n * USDC, block: 24, log: 1, tx: "0x62" },
      { developer: "0x00000000000000000000000000000000000000ff", amount: 7n * USDC, block: 25, tx: "0x63" },
    ],
    30,
  );
  await waitFor("a synced step", () => lines.some((l) => l.msg === "synced"), { timeoutMs: 30_000, intervalMs: 5 });
  const synced = lines.find((l) => l.msg === "synced") as Record<string, number>;
  // Three events; two registered developers written (the third wallet has no row), c untouched.
  expect(synced).toMatchObject({ chain_id: CHAIN, added: 3, developers_changed: 2 });
  expect(synced.write_ms).toBeGreaterThanOrEqual(0);
  expect(synced.write_ms).toBeLessThanOrEqual(synced.duration_ms as number);
});

/**
 * A provider lagging twice (the same case in sync-reorgs.test.ts, "a state unseen"): a missing event
 * remembered across rounds that saw nothing would be confirmed by the second lag's checkpoint and
 * taken back, though it never left the chain.
 */
it("forgets every event seen missing before a failed round: the states it did not see confirm nothing", async () => {
  await startLoop();
  const w = wallet(0x51);
  await stakeSeenMissing(w);
  // Rounds fail (the sidecar's cursor table is away) while Ponder goes on. Two failures: the
  // first may be the developers write of a round whose step committed before the rename (it reads
  // the cursor too), and that failure keeps the step's sightings by design (loop.ts writeFailed);
  // each round after it fails at its step, before its write, so the second failure is a step's,
  // which clears them. On a busy machine, waiting for one let the test's unseen states pass
  // before any step had failed (one full run of npm test).
  await fake.db.query("ALTER TABLE stakesync.cursor RENAME TO cursor_away");
  await waitFor("a failed step", () => (loop?.state.consecutiveErrors ?? 0) >= 2, {
    timeoutMs: 30_000,
    intervalMs: 5,
  });
  await lagAgainUnseen(w);
  await fake.db.query("ALTER TABLE stakesync.cursor_away RENAME TO cursor");
  await expectNothingTakenBack(w);
});

it("forgets them when it loses leadership too: a new term starts from what it sees", async () => {
  await startLoop();
  const w = wallet(0x52);
  await stakeSeenMissing(w);
  // The leader's session ends (a PostgreSQL restart, a network cut), and the lock stays taken
  // (here by the test, queued for it) until Ponder has gone on unseen.
  await fake.db.query("SELECT pg_terminate_backend($1), pg_advisory_lock($2)", [loop?.state.leaderPid, LEADER_LOCK]);
  await waitFor("leadership lost", () => loop?.state.role === "standby", { timeoutMs: 30_000, intervalMs: 5 });
  await lagAgainUnseen(w);
  await fake.db.query("SELECT pg_advisory_unlock($1)", [LEADER_LOCK]);
  await waitFor("leadership again", () => loop?.state.role === "leader", { timeoutMs: 30_000, intervalMs: 10 });
  await expectNothingTakenBack(w);
});

it("measures the Ponder instance it reads from what this term saw: an earlier term's peak keeps it on none", async () => {
  const REPLICA = "ponder_replica";
  await startLoop({ PONDER_REPLICA_SCHEMAS: REPLICA });
  await fake.progress({ latest: 40 });
  await fake.replica(REPLICA).progress({ latest: 37 });
  await rounds(2);
  expect(loop?.state.source).toBe(fake.config.ponderSchema);
  // Leadership lost; meanwhile the first instance comes back down to 36 (a restart onto a
  // provider that lags) and the second reaches 38.
  await fake.db.query("SELECT pg_terminate_backend($1), pg_advisory_lock($2)", [loop?.state.leaderPid, LEADER_LOCK]);
  await waitFor("leadership lost", () => loop?.state.role === "standby", { timeoutMs: 30_000, intervalMs: 5 });
  expect(loop?.state.source).toBe(fake.config.ponderSchema);
  await fake.progress({ latest: 36 });
  await fake.replica(REPLICA).progress({ latest: 38 });
  await fake.db.query("SELECT pg_advisory_unlock($1)", [LEADER_LOCK]);
  await waitFor("leadership again", () => loop?.state.role === "leader", { timeoutMs: 30_000, intervalMs: 10 });
  // Two blocks ahead of all the first has shown in this term: the second is read.
  await waitFor("the second instance read", () => loop?.state.source === REPLICA, {
    timeoutMs: 30_000,
    intervalMs: 10,
  });
});

/**
 * The leader pings its connection every second so that the server, which ends a silent leader's
 * session, keeps it while the loop sleeps. A ping sent during a round waited behind the round's
 * statement and then ran before the next one: a round trip more inside the round.
 */
it("loses the leader connection without crashing when the server ends its idle session", async () => {
  fake = await fakePonder();
  const connection = await connectWriter(fake.url);
  const errors: Error[] = [];
  const heard = (error: Error) => errors.push(error);
  process.on("uncaughtException", heard);
  onTestFinished(() => {
    process.off("uncaughtException", heard);
  });
  // As a PostgreSQL restart, or an operator following "No leader", ends it: a FATAL message to
  // a client with no query running, then the socket's close; nobody ends the client meanwhile.
  const ended = new Promise((resolve) => connection.client.once("end", resolve));
  await fake.db.query("SELECT pg_terminate_backend($1)", [connection.pid]);
  expect(String(await connection.lost)).toMatch(/terminating connection due to administrator command/);
  // The socket's close, and pg's second error with it, come and go (unheard, that error threw
  // before pg could emit "end": then the wait ends after 10 s).
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(errors).toEqual([]);
});

it("does not ping its connection during a round: a round held up for 2.5 s runs only its own statements", async () => {
  await startLoop();
  await rounds(2);
  const sent: { client: unknown; text: string; at: number }[] = [];
  const original = pg.Client.prototype.query;
  const query = vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (
    this: pg.Client,
    ...args: unknown[]
  ) {
    const q = args[0];
    const text = typeof q === "string" ? q : String((q as { text?: unknown } | undefined)?.text ?? "");
    sent.push({ client: this, text, at: performance.now() });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original);
  // Put back even if the test fails: the worker runs other files next (vitest.config.ts).
  onTestFinished(() => query.mockRestore());
  const blocker = new pg.Client({ connectionString: fake.config.database.url });
  await blocker.connect();
  // The next round's first statement reads the cursors: it waits for this lock.
  await blocker.query("BEGIN; LOCK TABLE stakesync.cursor IN ACCESS EXCLUSIVE MODE");
  const lockedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await blocker.query("COMMIT");
  await blocker.end();
  await rounds(2);
  query.mockRestore();
  // The round that began while the lock was held, from its BEGIN to its COMMIT.
  const held = sent.find((c) => c.at > lockedAt && c.text.includes("REPEATABLE READ"));
  const leader = sent.filter((c) => c.client === held?.client);
  const begin = held ? leader.indexOf(held) : -1;
  const end = leader.findIndex((c, i) => i > begin && /\bCOMMIT\b/.test(c.text));
  expect(begin).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(begin);
  expect(leader[end]?.at ?? 0).toBeGreaterThan(lockedAt + 2000); // it was held up
  expect(
    leader
      .slice(begin, end + 1)
      .map((c) => c.text.trim())
      .filter((t) => t === "SELECT 1"),
  ).toEqual([]);
});

it("tries a round that Ponder's lock outlasted again after RETRY_DELAY_MS or its next commit, not after a grown backoff", () => {
  const lockTimeout = Object.assign(new Error("canceling statement due to lock timeout"), { code: "55P03" });
  // The sixth in a row, as after a 20-s freeze of Ponder inside its reorg (each try waits 2 s).
  expect(retryAfter(lockTimeout, 400, 6)).toEqual([400, { backoff: false }]);
  const refused = Object.assign(new Error("connection refused"), { code: "57P03" });
  expect(retryAfter(refused, 400, 6)).toEqual([12_800, { backoff: true }]);
});

it("waits a poll between rounds while Ponder's tables are not there yet, its first reconciliation overdue", async () => {
  // A schema Ponder has not created: the sidecar started before Ponder, as `npm run dev` starts them.
  await startLoop({ DATABASE_SCHEMA: "ponder_not_yet", SYNC_POLL_MS: "200" });
  const commits = async () => {
    const { rows } = await fake.db.query<{ n: string }>(
      "SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()",
    );
    await fake.db.query("SELECT pg_stat_clear_snapshot()");
    return Number(rows[0]?.n);
  };
  const before = await commits();
  // Over 2.5 s: a backend reports its counts at most once a second.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  // Five rounds a second, a few transactions each (and this test's own); without the wait a round
  // ran every 1.6 ms, hundreds a second.
  expect((await commits()) - before).toBeLessThan(150);
  expect(loop?.state.role).toBe("leader");
});

it("polls for the end of Ponder's backfill while an early step's developers wait, not at SYNC_POLL_MS", async () => {
  // A poll a minute: only the loop's own faster poll can find the backfill's end within the test.
  await startLoop({ SYNC_POLL_MS: "60000" });
  // Its first round (a reconciliation) done: no other runs until woken.
  await waitFor("the first round", () => loop?.state.lastSyncAt != null, { timeoutMs: 30_000 });
  const unwritten = async () =>
    Number((await fake.db.query("SELECT count(*) AS n FROM stakesync.unwritten_developer")).rows[0]?.n);
  const w = wallet(0xe1);
  await fake.register(w);
  // Ponder backfills, near its end (36 of the head's 40 blocks): a NOTIFY (which Ponder sends only
  // once it is live) wakes the loop for the early step.
  await fake.index([{ developer: w, amount: 30n * USDC, block: 10 }], 36);
  await fake.progress({ latest: 36, ready: false });
  await fake.db.query(`NOTIFY "${fake.config.ponderSchema}_live_query"`);
  await waitFor("the early step", async () => (await unwritten()) === 1, { timeoutMs: 30_000 });
  expect(await fake.developer(w)).toMatchObject({ status: "pending" });
  // Its backfill ends, with no NOTIFY: the developer is written a poll later, not a minute later.
  await fake.progress({ latest: 36, ready: true });
  await waitFor("the developer written", async () => (await fake.developer(w))?.status === "active", {
    timeoutMs: 30_000,
  });
  expect(await unwritten()).toBe(0);
});

it("polls for Ponder's /ready after a step beside its index build, for the block it held back, not at SYNC_POLL_MS", async () => {
  await startLoop({ SYNC_POLL_MS: "60000" });
  await waitFor("the first round", () => loop?.state.lastSyncAt != null, { timeoutMs: 30_000 });
  const cursor = async () =>
    Number((await fake.db.query("SELECT block FROM stakesync.cursor WHERE chain_id = $1", [CHAIN])).rows[0]?.block);
  const w = wallet(0xe2);
  await fake.register(w);
  // Ponder's backfill is over (its checkpoint 36, the head 40) and it builds its indexes: the
  // CREATE INDEX's lock, held in a session of its own. A NOTIFY wakes the loop for the step.
  await fake.index([{ developer: w, amount: 30n * USDC, block: 34 }], 36);
  await fake.progress({ latest: 36, ready: false });
  const build = new pg.Client({ connectionString: fake.url });
  await build.connect();
  try {
    await build.query(`BEGIN; CREATE INDEX ON ${fake.config.ponderSchema}.stake_event (transaction_hash)`);
    await fake.db.query(`NOTIFY "${fake.config.ponderSchema}_live_query"`);
    // To 33: the checkpoint's block (36) held back, less CONFIRMATIONS (2). The stake in 34 waits.
    await waitFor("the step beside the build", async () => (await cursor()) === 33, { timeoutMs: 30_000 });
    expect(await fake.developer(w)).toMatchObject({ status: "pending" });
  } finally {
    await build.query("ROLLBACK");
    await build.end();
  }
  // Ponder turns ready, with no NOTIFY: the stake is synced a poll later, not a minute later.
  await fake.progress({ latest: 36, ready: true });
  await waitFor("the held-back block synced", async () => (await fake.developer(w))?.status === "active", {
    timeoutMs: 30_000,
  });
  expect(await cursor()).toBe(34);
});

/**
 * The fake's database behind a door: shut, every new connection is reset at once (PostgreSQL
 * down); open, it is forwarded. `goDark()` also stops forwarding on the connections open now, in
 * both directions, without closing them: a network that drops the host's packets. The URL the
 * loop is given points at the door.
 */
async function databaseDoor(target: string) {
  const url = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  const door = {
    open: false,
    /** Sees what each client sends, before it is forwarded. */
    watch: undefined as ((sent: string) => void) | undefined,
    goDark: () => {
      door.open = false;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
  };
  const server = createServer((client) => {
    if (!door.open) return client.destroy();
    const upstream = connect(Number(url.port), url.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on("data", (chunk: Buffer) => door.watch?.(chunk.toString("latin1")));
    client.pipe(upstream).pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const through = new URL(target);
  through.port = String((server.address() as AddressInfo).port);
  onTestFinished(async () => {
    for (const pair of pairs) for (const socket of pair) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { door, url: through.toString() };
}

it("pages database_unreachable itself while it cannot reach the database to lead, and resolves it once it can", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10", ALERT_AFTER_ERRORS: "2" });
  const { door, url } = await databaseDoor(fake.url);
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  const { ownAlerts } = sidecarParts(config);
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map());
  loop.start();
  const state = loop.state;
  // Each try of every second counts, at this backoff: no leader pages that, so this sidecar does.
  await waitFor("two tries failed", () => state.unreachable.tries >= 2, { timeoutMs: 30_000 });
  expect(state).toMatchObject({ role: "standby", consecutiveErrors: 0, unreachable: { error: expect.any(String) } });
  checkUnreachable(ownAlerts, config, state.unreachable, "sidecar-a:42070");
  expect(ownAlerts.firing()).toEqual([
    expect.objectContaining({
      rule: "database_unreachable",
      severity: "critical",
      text: expect.stringMatching(/^database unreachable from sidecar sidecar-a:42070 \(\d+ tries in a row\); last: /),
    }),
  ]);
  door.open = true;
  await waitFor("leadership", () => state.role === "leader", { timeoutMs: 30_000 });
  expect(state.unreachable).toEqual({ tries: 0, error: null });
  checkUnreachable(ownAlerts, config, state.unreachable, "sidecar-a:42070");
  expect(ownAlerts.firing()).toEqual([]);
});

it("counts each loss of the database once, however many tries it lasts (stakesync_database_outages_total)", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10", SYNC_POLL_MS: "10" });
  const { door, url } = await databaseDoor(fake.url);
  door.open = true;
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  const metrics = createMetrics([CHAIN]);
  loop = new SyncLoop(config, createLogger("silent"), metrics, new Map());
  loop.start();
  const state = loop.state;
  const outages = async () => (await metrics.databaseOutages.get()).values[0]?.value ?? 0;
  const restart = async () => {
    const pid = state.leaderPid;
    await fake.db.query("SELECT pg_terminate_backend($1)", [pid]);
    await waitFor("the next term", () => state.role === "leader" && state.leaderPid !== pid, { timeoutMs: 30_000 });
  };
  await waitFor("leadership", () => state.role === "leader", { timeoutMs: 30_000 });
  expect(await outages()).toBe(0);
  // Two restarts of the leader's session: one each.
  await restart();
  await restart();
  expect(await outages()).toBe(2);
  // One that lasts: the term ends, and every try to lead fails for a while; still one.
  door.open = false;
  const pid = state.leaderPid;
  await fake.db.query("SELECT pg_terminate_backend($1)", [pid]);
  await waitFor("five tries", () => state.unreachable.tries >= 5, { timeoutMs: 30_000 });
  door.open = true;
  await waitFor("the next term", () => state.role === "leader" && state.leaderPid !== pid, { timeoutMs: 30_000 });
  expect(await outages()).toBe(3);
});

it("counts tries that cannot reach the database at a failing round's pace, not one each second", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "60000" });
  const { url } = await databaseDoor(fake.url);
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line).msg) });
  loop = new SyncLoop(config, log, createMetrics([CHAIN]), new Map());
  loop.start();
  const tries = () => lines.filter((l) => l === "cannot reach the database to take leadership").length;
  await waitFor("three tries", () => tries() >= 3, { timeoutMs: 30_000 });
  // The next counts a minute (RETRY_DELAY_MS) after the first: a PostgreSQL restart of a few
  // seconds pages nothing.
  expect(loop.state.unreachable.tries).toBe(1);
});

it("stands down within seconds when the database goes out of reach under it, and counts its tries from there", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10", SYNC_POLL_MS: "10" });
  const { door, url } = await databaseDoor(fake.url);
  door.open = true;
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  // The effects' pool, over which the leader confirms its lock: through the same door, with the
  // effects pool's 60-s bound on a query (sidecar/db/pools.ts).
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2000, query_timeout: 60_000 });
  // Not awaited: a pool's end waits for its dark connection, until the door's own end breaks it.
  onTestFinished(() => {
    pool.end().catch(() => undefined);
  });
  pool.on("error", () => undefined);
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map(), { confirmOver: pool });
  loop.start();
  const state = loop.state;
  await waitFor("leadership", () => state.role === "leader", { timeoutMs: 30_000 });
  // Once a confirmation has opened the pool's connection: that one goes dark too, and its
  // question waits for an answer that never comes.
  await waitFor("a confirmation's connection", () => pool.totalCount >= 1, { timeoutMs: 30_000 });
  door.goDark();
  // Its own connection hears nothing (TCP would give up in minutes); its confirmations have no
  // answer: once neither has had one for LEADER_SILENCE_LIMIT_S, it stands down.
  await waitFor("standing down", () => state.role === "standby", { timeoutMs: 60_000 });
  await waitFor("its tries counted", () => state.unreachable.tries >= 1, { timeoutMs: 30_000 });
});

it("pings a leader's connection gone dark once while it waits between rounds, not once a second", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10", SYNC_POLL_MS: "60000" });
  const { door, url } = await databaseDoor(fake.url);
  door.open = true;
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map());
  loop.start();
  // Its first round done, it waits (a poll a minute): only its pings keep the session.
  await waitFor("the first round", () => loop?.state.lastSyncAt != null, { timeoutMs: 30_000 });
  const dark = (loop as unknown as { leaderClient?: pg.Client }).leaderClient;
  const queries = vi.spyOn(pg.Client.prototype, "query");
  onTestFinished(() => queries.mockRestore());
  door.goDark();
  // Over three ping intervals (1 s each): the first ping waits for its answer; no other joins it.
  await new Promise((resolve) => setTimeout(resolve, 3500));
  const pings = queries.mock.calls.filter((call, i) => call[0] === "SELECT 1" && queries.mock.contexts[i] === dark);
  expect(dark).toBeDefined();
  expect(pings).toHaveLength(1);
});

it("pages nothing for a PostgreSQL restart of a few seconds (the soak's: RETRY_DELAY_MS 500)", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "500" });
  const { door, url } = await databaseDoor(fake.url);
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map());
  loop.start();
  const state = loop.state;
  let most = 0;
  const watch = setInterval(() => {
    most = Math.max(most, state.unreachable.tries);
  }, 10);
  onTestFinished(() => clearInterval(watch));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  door.open = true;
  await waitFor("leadership", () => state.role === "leader", { timeoutMs: 30_000 });
  // At most a try a second, counted at 0, 0.5, 1.5, 3.5 s…: fewer than ALERT_AFTER_ERRORS (5).
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThan(fake.config.alertAfterErrors);
});

it("keeps leading while only its confirmations fail (a pool out of connections), its own connection answering", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10", SYNC_POLL_MS: "10" });
  const tooMany = Object.assign(new Error("sorry, too many clients already"), { code: "53300" });
  const refusing = { query: () => Promise.reject(tooMany) } as unknown as Queryable;
  loop = new SyncLoop(fake.config, createLogger("silent"), createMetrics([CHAIN]), new Map(), {
    confirmOver: refusing,
  });
  loop.start();
  const state = loop.state;
  await waitFor("leadership", () => state.role === "leader", { timeoutMs: 30_000 });
  const pid = state.leaderPid;
  // Past LEADER_SILENCE_LIMIT_S with every confirmation refused.
  await new Promise((resolve) => setTimeout(resolve, 6000));
  expect(state).toMatchObject({ role: "leader", leaderPid: pid });
});

it("counts tries the database refuses (a password rotated) as well as those it does not answer", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10" });
  const url = new URL(fake.url);
  url.password = "not-the-password";
  const config = { ...fake.config, database: { ...fake.config.database, url: url.toString() } };
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map());
  loop.start();
  await waitFor("a refused try counted", () => (loop?.state.unreachable.tries ?? 0) >= 1, { timeoutMs: 30_000 });
  expect(loop.state.unreachable.error).toMatch(/password authentication failed/);
});

it("asks for its lock on its own server, and renews the pools' connections, busy or not: a failover that left the old primary running", async () => {
  fake = await fakePonder();
  const { pool, httpPool, confirmPool } = createPools(fake.config, createLogger("silent"), { renewS: 1 });
  onTestFinished(async () => {
    await Promise.all([pool.end(), httpPool.end(), confirmPool.end()]);
  });
  const connection = await connectWriter(fake.url);
  onTestFinished(() => connection.client.end());
  await connection.client.query("SELECT pg_advisory_lock($1)", [LEADER_LOCK]);
  expect(await holdsLeaderLock(confirmPool, connection.pid, connection.server)).toBe(true);
  // The same pid holding the lock on another server (the new primary, where another sidecar leads)
  // is not this leader's lock.
  expect(await holdsLeaderLock(confirmPool, connection.pid, "946684800")).toBe(false);
  // Asked on a session with another time zone and date style (a setting changed since the leader
  // connected): the same server.
  const other = new pg.Client({ connectionString: fake.url });
  await other.connect();
  onTestFinished(() => other.end());
  await other.query("SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'SQL, DMY'");
  expect(await holdsLeaderLock(other, connection.pid, connection.server)).toBe(true);
  // Asked every 100 ms, a connection was never idle, and pg-pool never replaced it: made before
  // the failover, it went on reaching the old server.
  for (const p of [confirmPool, pool, httpPool]) {
    const pids = new Set<number>();
    await waitFor(
      "a renewed connection",
      async () => {
        pids.add((await p.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid ?? 0);
        return pids.size > 1;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }
});

it("confirms its lock over a pool of its own: with the effects' pool taken whole, a confirmation still answers", async () => {
  fake = await fakePonder();
  const { pool, httpPool, confirmPool } = createPools(fake.config, createLogger("silent"));
  const busy = await Promise.all(Array.from({ length: 5 }, () => pool.connect()));
  onTestFinished(async () => {
    for (const c of busy) c.release();
    await Promise.all([pool.end(), httpPool.end(), confirmPool.end()]);
  });
  const { client, pid } = await leadingSession(fake.url);
  onTestFinished(() => client.end());
  // On the effects' pool this waited for a free connection: a healthy leader in a long round,
  // its question unanswered for 4 s, stood down.
  expect(await holdsLeaderLock(confirmPool, pid)).toBe(true);
});

it("says on its state, while it lasts, that its role may not make Ponder's commits durable, and once on its log", async () => {
  fake = await fakePonder({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
  // A role with every privilege the sidecar needs but TRIGGER on Ponder's tables (an older
  // docs/sql/roles.sql). Roles are the cluster's: named after this test's database.
  const role = `no_trigger_${(await fake.db.query<{ d: string }>("SELECT current_database() AS d")).rows[0]?.d}`;
  await fake.db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'n';
    GRANT ALL ON SCHEMA stakesync, "${fake.config.ponderSchema}", public TO ${role};
    GRANT ALL ON ALL TABLES IN SCHEMA stakesync, "${fake.config.ponderSchema}", public TO ${role};
    GRANT ALL ON ALL SEQUENCES IN SCHEMA stakesync, public TO ${role};
    REVOKE TRIGGER ON ALL TABLES IN SCHEMA "${fake.config.ponderSchema}" FROM ${role}`);
  try {
    await notDurable(role);
  } finally {
    await loop?.stop();
    loop = undefined;
    await fake.db.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  }
});

async function notDurable(role: string) {
  const url = new URL(fake.url);
  url.username = role;
  url.password = "n";
  const config = { ...fake.config, database: { ...fake.config.database, url: url.toString() } };
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  loop = new SyncLoop(config, log, createMetrics([CHAIN]), new Map([[CHAIN, { block: 40, at: Date.now() }]]));
  loop.start();
  const w = wallet(0x71);
  await fake.register(w);
  await fake.index([{ developer: w, amount: 30n * USDC, block: 24, tx: "0x71" }], 30);
  // It syncs on (the trigger is no condition of the sync), and says what it could not do.
  await waitFor("the stake synced", async () => (await fake.developer(w))?.status === "active", { timeoutMs: 30_000 });
  await rounds(3);
  expect(loop.state.ponderNotDurable).toEqual([fake.config.ponderSchema]);
  const said = lines.filter((l) => String(l.msg).startsWith("cannot make Ponder's commits durable"));
  expect(said).toEqual([expect.objectContaining({ level: 40, schema: fake.config.ponderSchema })]);
  expect(
    (
      await fake.db.query(
        "SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = 'stakesync_durable_commit'",
        [`"${fake.config.ponderSchema}".stake_event`],
      )
    ).rows[0]?.n,
  ).toBe(0);
}

it("stands down at once when its connection is lost during a failed round's backoff, not when the backoff ends", async () => {
  await startLoop({ RETRY_DELAY_MS: "30000" });
  // Rounds fail for a reason of their own (the sidecar's cursor table is away): a 30-s backoff.
  await fake.db.query("ALTER TABLE stakesync.cursor RENAME TO cursor_away");
  await waitFor("a failed round", () => (loop?.state.consecutiveErrors ?? 0) >= 1, { timeoutMs: 30_000 });
  // The server ends the leader's session (a PostgreSQL restart): before, the loop went on as
  // leader, its pid a dead backend's, until the backoff ended.
  const pid = loop?.state.leaderPid;
  await fake.db.query("SELECT pg_terminate_backend($1)", [pid]);
  const ended = performance.now();
  await waitFor("standing down", () => loop?.state.role === "standby" || loop?.state.leaderPid !== pid, {
    timeoutMs: 20_000,
    intervalMs: 20,
  });
  expect(performance.now() - ended).toBeLessThan(20_000);
  await fake.db.query("ALTER TABLE stakesync.cursor_away RENAME TO cursor");
});

it("runs its periodic reconciliation on the monotonic clock: a wall clock stepped back an hour does not put it off an hour", async () => {
  await startLoop({ RECONCILE_INTERVAL_MS: "1000" });
  const w = wallet(0x81);
  await fake.register(w);
  await fake.index([{ developer: w, amount: 30n * USDC, block: 24, tx: "0x81" }], 30);
  await waitFor("the stake applied", async () => (await fake.developer(w))?.status === "active", { timeoutMs: 30_000 });
  await rounds(2);
  // NTP steps the clock back an hour; then the application edits the sidecar's column, which
  // only a reconciliation repairs (no event of the developer's comes).
  const wall = Date.now.bind(Date);
  const stepped = vi.spyOn(Date, "now").mockImplementation(() => wall() - 3_600_000);
  onTestFinished(() => stepped.mockRestore());
  await fake.db.query("UPDATE developers SET status = 'inactive' WHERE wallet_address = $1", [w]);
  await waitFor("the reconciliation's repair", async () => (await fake.developer(w))?.status === "active", {
    timeoutMs: 20_000,
  });
});

it("fails a try to lead whose answer never comes (the network gone dark after connecting), counts it, and tries again", async () => {
  fake = await fakePonder({ RETRY_DELAY_MS: "10" });
  // Another session leads, so the sidecar stands by and tries every second.
  const other = await leadingSession(fake.url);
  onTestFinished(() => other.client.end().catch(() => undefined));
  const { door, url } = await databaseDoor(fake.url);
  door.open = true;
  let darkened = false;
  door.watch = (sent) => {
    if (darkened || !sent.includes("pg_try_advisory_lock")) return;
    // The try's question goes out, its answer never comes back; new connections get through.
    darkened = true;
    setImmediate(() => {
      door.goDark();
      door.open = true;
    });
  };
  const config = { ...fake.config, database: { ...fake.config.database, url } };
  loop = new SyncLoop(config, createLogger("silent"), createMetrics([CHAIN]), new Map());
  loop.start();
  const state = loop.state;
  await waitFor("a try gone dark", () => darkened, { timeoutMs: 30_000 });
  // Before: that try waited for TCP to give up (about 15 minutes), no other made or counted.
  await waitFor("the try failed and counted", () => state.unreachable.tries >= 1, { timeoutMs: 40_000 });
  await other.client.end();
  await waitFor("leadership on a later try", () => state.role === "leader", { timeoutMs: 30_000 });
});

it("drops a confirmation connection gone dark, so that the next confirmation asks over a new one", async () => {
  fake = await fakePonder();
  const { door, url } = await databaseDoor(fake.url);
  door.open = true;
  const { pool, httpPool, confirmPool } = createPools(
    { ...fake.config, database: { ...fake.config.database, url } },
    createLogger("silent"),
  );
  onTestFinished(async () => {
    for (const p of [pool, httpPool]) await p.end();
    confirmPool.end().catch(() => undefined); // not awaited: its dark connection, if kept, never ends
  });
  expect((await confirmPool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  door.goDark();
  door.open = true; // the connection made is dark; a new one gets through
  // The loop stops waiting after 4 s; the pool's own bound ends the question and its connection.
  await expect(answeredWithin(confirmPool.query("SELECT 2 AS two"), 15_000)).rejects.toThrow(/Query read timeout/);
  // Before: this one queued behind the dark connection until TCP gave up.
  const next = await answeredWithin(confirmPool.query("SELECT 3 AS three"), 15_000);
  expect(next.rows).toEqual([{ three: 3 }]);
});

it("warns once when its leader connection has no tcp_user_timeout (a Unix socket), and not over TCP", async () => {
  fake = await fakePonder({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
  const warned = async (url: string) => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const config = { ...fake.config, database: { ...fake.config.database, url } };
    const own = new SyncLoop(config, log, createMetrics([CHAIN]), new Map([[CHAIN, { block: 40, at: Date.now() }]]));
    own.start();
    try {
      await waitFor("leadership", () => own.state.role === "leader", { timeoutMs: 30_000 });
    } finally {
      await own.stop();
    }
    return lines.filter((l) => String(l.msg).includes("no tcp_user_timeout")).length;
  };
  expect(await warned(fake.url)).toBe(0);
  // The same server through its socket in /tmp: the session reads tcp_user_timeout 0.
  const tcp = new URL(fake.url);
  const socket = `postgresql://${tcp.username}:${tcp.password}@localhost${tcp.pathname}?host=/tmp&port=${tcp.port}`;
  expect(await warned(socket)).toBe(1);
});

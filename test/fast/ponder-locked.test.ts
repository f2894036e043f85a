/**
 * Ponder frozen inside its own transaction. A reorg and a crash recovery each drop Ponder's
 * triggers in one transaction, which locks stake_event and `_ponder_checkpoint` exclusively until
 * it ends; a Ponder stopped inside one (SIGSTOP, a stalled VM, a database session the server
 * still thinks alive) never ends it. Here a session of the test takes those locks as that
 * transaction does. What reads Ponder's progress for /status, /ready, /metrics, the status page
 * and the alert rules answers anyway, IndexerWatch names the lock once it lasts, the alert rules
 * do not wait for an email that an SMTP server holds, `stakesync verify` says what it waits for,
 * and the sync step gives up after 2 s rather than hold the application's table with it.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { verify } from "../../cli/verify";
import { waitFor } from "../../lib/wait";
import { AlertMonitor } from "../../sidecar/effects/monitor";
import { startEffects } from "../../sidecar/effects/run";
import { OutboxWorker } from "../../sidecar/effects/worker";
import { IndexerWatch } from "../../sidecar/indexer-watch";
import { createLogger } from "../../sidecar/log";
import { classify } from "../../sidecar/sync/loop";
import { startSmtp } from "../helpers/peers";
import { CHAIN, type Fake, fakePonder, leadingSession, SCHEMA, sidecarParts, USDC, wallet } from "./ponder-fake";

const log = createLogger("error");
const ends: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end().catch(() => undefined);
});

/** A session in Ponder's reorg transaction: both tables locked as its DROP TRIGGERs lock them. */
async function holdPonderTables(fake: Fake) {
  const holder = new pg.Client({ connectionString: fake.url });
  await holder.connect();
  ends.push(() => holder.end());
  await holder.query(`BEGIN;
    LOCK TABLE "${SCHEMA}".stake_event IN ACCESS EXCLUSIVE MODE;
    LOCK TABLE "${SCHEMA}"._ponder_checkpoint IN ACCESS EXCLUSIVE MODE`);
  return { release: () => holder.query("ROLLBACK") };
}

/** Resolves with `work`'s value, or with "still waiting" once the lock has been held 30 s. */
const unlessHung = <T>(work: Promise<T>) =>
  Promise.race([work, new Promise<"still waiting">((resolve) => setTimeout(() => resolve("still waiting"), 30_000))]);

async function setUp(env: Record<string, string> = {}) {
  const fake = await fakePonder(env);
  ends.push(() => fake.close());
  const pool = new pg.Pool({ connectionString: fake.url, max: 8 }); // the status page's reads at once
  ends.push(() => pool.end());
  const { metrics, heads, alerts, ownAlerts, loop, appOn } = sidecarParts(fake.config, { head: 40, repeatMs: 60_000 });
  const w = wallet(0xb1);
  await fake.register(w, "frozen@example.test");
  await fake.index([{ developer: w, amount: 2n * USDC, block: 10 }], 12);
  await fake.round();
  return { fake, pool, metrics, heads, alerts, ownAlerts, loop, appOn, w };
}

it("answers /status, /ready, /metrics and the status page while Ponder's transaction holds its tables", async () => {
  const { fake, pool, appOn } = await setUp({ MAX_LAG_BLOCKS: "5" });
  const app = appOn(pool);
  const indexed = async () =>
    ((await (await app.request("/status")).json()) as { chains: { indexed: number | null }[] }).chains[0]?.indexed;
  expect(await indexed()).toBe(12);
  expect(await (await app.request("/metrics")).text()).toMatch(
    /^stakesync_ponder_indexed_block\{chain_id="31337"\} 12$/m,
  );

  const held = await holdPonderTables(fake);
  // At once: each waits LOCK_WAIT_MS for the lock before it gives up on Ponder's progress.
  const [status, ready, text, page] = await Promise.all([
    unlessHung(Promise.resolve(app.request("/status")).then((r) => r.json())),
    unlessHung(Promise.resolve(app.request("/ready")).then((r) => r.status)),
    unlessHung(Promise.resolve(app.request("/metrics")).then((r) => r.text())),
    unlessHung(Promise.resolve(app.request("/")).then((r) => r.status)),
  ]);
  // Ponder's progress is unknown meanwhile; the sidecar's own, from its tables, is not.
  expect(status).toMatchObject({ chains: [{ chainId: CHAIN, indexed: null, ponderReady: false, synced: 10 }] });
  expect(ready).toBe(503); // 30 behind (MAX_LAG_BLOCKS 5), as without the lock
  expect(text).toMatch(/^stakesync_last_synced_block\{chain_id="31337"\} 10$/m);
  // Ponder's block unknown: no value, not the last one (12), as for the lag and the head.
  expect(text).not.toMatch(/^stakesync_ponder_indexed_block\{/m);
  expect(page).toBe(200);

  await held.release();
  expect(await indexed()).toBe(12);
});

it("makes IndexerWatch name the lock once it has lasted INDEXER_DOWN_AFTER_MS, though Ponder's /health answers", async () => {
  const { fake, pool } = await setUp();
  // Ponder's HTTP server still up: its process runs, its database session is stuck in the transaction.
  const health = createServer((_request, response) => response.end("ok"));
  await new Promise<void>((resolve) => health.listen(0, "127.0.0.1", resolve));
  ends.push(() => new Promise((resolve) => health.close(resolve)));
  const ponderUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}`;
  const watch = new IndexerWatch({ ponderUrl, ponderSchema: SCHEMA, indexerDownAfterMs: 30_000 }, pool);
  await fake.db.query(`UPDATE "${SCHEMA}"._ponder_meta SET value = value || '{"heartbeat_at": 1}' WHERE key = 'app'`);

  const t0 = Date.now();
  await watch.observe(t0);
  expect(watch.down(t0 + 60_000)).toBeNull(); // unlocked: up

  const held = await holdPonderTables(fake);
  await unlessHung(watch.observe(t0 + 1_000));
  expect(watch.down(t0 + 30_999)).toBeNull(); // a reorg's lock lasts milliseconds: not yet
  expect(watch.down(t0 + 31_000)).toMatch(/^Ponder's tables stay locked: a reorg or crash recovery that does not end/);

  await held.release();
  await fake.db.query(`UPDATE "${SCHEMA}"._ponder_meta SET value = value || '{"heartbeat_at": 2}' WHERE key = 'app'`);
  await watch.observe(t0 + 32_000);
  expect(watch.down(t0 + 90_000)).toBeNull();
});

it("runs the alert rules while an SMTP server holds a welcome email's answer", async () => {
  const smtp = await startSmtp();
  ends.push(() => smtp.close());
  smtp.state.delayMs = 120_000; // longer than the test: the send is still waiting at its end
  const { fake, pool, metrics, heads, alerts, ownAlerts, loop } = await setUp({
    SMTP_URL: smtp.url,
    MAIL_FROM: "stakesync@example.test",
    MAX_LAG_BLOCKS: "5",
  });
  // This session leads (its backend pid is the outbox's fence), as the loop's would.
  const leader = await leadingSession(fake.url);
  ends.push(() => leader.client.end());
  loop.state.role = "leader";
  loop.state.leaderPid = leader.pid;
  const worker = new OutboxWorker(fake.config, pool, log, metrics);
  const indexer = new IndexerWatch(fake.config, pool);
  const monitor = new AlertMonitor(fake.config, heads, alerts);
  const stop = startEffects({
    config: fake.config,
    pool,
    heads,
    indexer,
    loop,
    worker,
    monitor,
    alerts,
    ownAlerts,
    log,
  });
  ends.push(async () => {
    loop.state.role = "standby";
    await smtp.close(); // ends the send left waiting, and with it the worker's tick
    await stop();
  });

  await waitFor("the welcome email's data at the SMTP server", async () => smtp.state.receiving > 0);
  // 30 blocks behind (head 40, synced 10), MAX_LAG_BLOCKS 5: the lag rule fires while the send
  // still waits. Waiting for it, the rules ran only once the mailer gave up (its deadline,
  // 240 s; 10 jobs a tick), and the job has failed by then.
  await waitFor("the lag alert", async () => alerts.firing().some((a) => a.rule === "lag"));
  const { rows: jobs } = await fake.db.query("SELECT state, attempts, last_error FROM stakesync.outbox");
  expect(jobs).toEqual([{ state: "pending", attempts: 1, last_error: null }]);
  expect(smtp.mails).toHaveLength(0);
});

it("makes `stakesync verify` say which tables stayed locked and what to do, instead of hanging", async () => {
  const { fake } = await setUp();
  const held = await holdPonderTables(fake);
  const outcome = await unlessHung(verify(fake.config, () => undefined, { lockWaitMs: 500 }).catch((e: Error) => e));
  expect(String(outcome)).toMatch(
    /cannot read Ponder's tables in schema "ponder_fake": a table stayed locked for more than 0\.5 s: a Ponder reorg or crash recovery that does not end .*"Indexer stuck"/,
  );
  await held.release();
});

it("fails the sync step after 2 s, so that it does not hold the developers table for as long as Ponder sleeps", async () => {
  const { fake, w } = await setUp();
  await fake.index([{ developer: w, amount: 1n * USDC, block: 13 }], 15);
  const held = await holdPonderTables(fake);
  const outcome = await unlessHung(fake.round().catch((e: Error) => e));
  expect(outcome).toMatchObject({ code: "55P03" });
  expect(classify(outcome)).toBe("ponder");
  // The step let go of developers with its failure: the application's migration goes ahead.
  const app = new pg.Client({ connectionString: fake.url });
  await app.connect();
  ends.push(() => app.end());
  await app.query("BEGIN; LOCK TABLE developers IN ACCESS EXCLUSIVE MODE NOWAIT; ROLLBACK");
  await held.release();
  await fake.round();
  expect(await fake.developer(w)).toMatchObject({ stake_amount: "3.000000" });
});

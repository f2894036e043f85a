/**
 * The outbox worker against a real SMTP server (sidecar/effects/worker.ts, mailer.ts): an email
 * the server took is recorded once the database lets it, before anything else and whoever leads,
 * so its claim never runs out into a second send; and a server that answers, but too slowly, has
 * its send cut off well within the claim's lease.
 */
import { createServer, type Socket } from "node:net";
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { freePort } from "../../lib/ports";
import { waitFor } from "../../lib/wait";
import { createPools } from "../../sidecar/db/pools";
import { createMailer, SEND_DEADLINE_MS } from "../../sidecar/effects/mailer";
import { LEASE_MS } from "../../sidecar/effects/outbox";
import { OutboxWorker } from "../../sidecar/effects/worker";
import { SERVER_START } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import type { LoopState } from "../../sidecar/sync/loop";
import { startSmtp } from "../helpers/peers";
import { type Fake, fakePonder, leadingSession, wallet } from "./ponder-fake";

const ends: (() => Promise<unknown> | unknown)[] = [];
let fake: Fake | undefined;
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end();
  await fake?.close();
  fake = undefined;
});

/**
 * An SMTP peer, a fake with one developer whose welcome email is due, and a session that leads
 * (its backend pid is the outbox's fence), as the loop's would.
 */
async function welcomeDue(w: string, email: string) {
  const smtp = await startSmtp();
  ends.push(() => smtp.close());
  const due = await fakePonder({ SMTP_URL: smtp.url, MAIL_FROM: "stakesync@example.test" });
  fake = due;
  await due.register(w, email);
  await due.db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [w]);
  const leader = await leadingSession(due.url);
  ends.push(() => leader.client.end());
  const state = { role: "leader", leaderPid: leader.pid } as LoopState;
  return { smtp, fake: due, db: due.db, state, leader };
}

/**
 * The fake's database closing and reopening its door, as a restart or an outage does: `close`
 * lets no new connection in and ends every one but `db`'s and the leader's. A database cannot
 * shut its own door: this is done from another one.
 */
async function databaseDoor(fake: Fake, db: pg.Client, leaderPid: number | null) {
  const database = new URL(fake.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: fake.url.replace(`/${database}`, "/postgres") });
  await admin.connect();
  ends.push(() => admin.end());
  ends.push(() => admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`));
  return {
    close: async () => {
      await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
      await db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), $1)`,
        [leaderPid],
      );
    },
    open: () => admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`),
  };
}

/** The due job's claim left by a worker that died in the middle of its send, its lease run out. */
async function claimRanOut(db: pg.Client) {
  await db.query(
    "UPDATE stakesync.outbox SET locked_by = 'gone:1:dead', locked_until = now() - interval '1 second', attempts = 1",
  );
}

/** After a break, ticks 5 s apart: no take-over for 50 s (the wait begins anew), then one. */
async function takesOverAfterWaiting(smtp: { mails: unknown[] }, tick: () => Promise<void>) {
  for (let n = 0; n < 10; n++) await tick();
  expect(smtp.mails).toHaveLength(0);
  for (let n = 0; n < 3; n++) await tick();
  expect(smtp.mails).toHaveLength(1);
}

it("records an email the SMTP server took once the database is back, whoever leads, and never sends it again", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(1), "dave@example.test");
  const door = await databaseDoor(fake, db, state.leaderPid);
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  pool.on("error", () => undefined); // its idle connection is ended below, as a restart ends it
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]));

  // The database goes away while the server takes the email: the worker's connection ends, and
  // no new one is let in, so the record of the send fails.
  smtp.state.beforeAccepting = door.close;
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(1);
  const job = async () =>
    (await db.query("SELECT state, attempts, locked_until < now() AS expired FROM stakesync.outbox")).rows;
  expect(await job()).toEqual([{ state: "pending", attempts: 1, expired: false }]);

  // Back, with the claim's lease run out (the outage lasted) and this sidecar no longer leading:
  // its next tick records the send, and nothing is claimed again.
  smtp.state.beforeAccepting = undefined;
  await door.open();
  await db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  await worker.tick({ ...state, role: "standby", leaderPid: null });
  expect(await job()).toEqual([{ state: "sent", attempts: 1, expired: null }]);
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(1);
  await worker.close();
});

it("after an outage longer than the claim's lease, a worker that met it lets the one that sent the email record it, and sends it once", async () => {
  const { smtp, fake, db, state, leader } = await welcomeDue(wallet(3), "frank@example.test");
  const door = await databaseDoor(fake, db, state.leaderPid);
  const poolOf = () => {
    const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
    pool.on("error", () => undefined); // its idle connection is ended below, as a restart ends it
    ends.push(() => pool.end());
    return pool;
  };
  const a = new OutboxWorker(fake.config, poolOf(), createLogger("silent"), createMetrics([31337]));
  // b, the other sidecar's worker, on a clock of the test's: its ticks come every 5 s of it.
  let now = 0;
  const b = new OutboxWorker(fake.config, poolOf(), createLogger("silent"), createMetrics([31337]), 120_000, () => now);
  const standby = { ...state, role: "standby", leaderPid: null } as LoopState;
  const tickB = async (as: LoopState, ms: number) => {
    for (const end = now + ms; now < end; ) {
      now += 5000;
      await b.tick(as);
    }
  };
  const job = async (w: string) =>
    (await db.query("SELECT state, attempts FROM stakesync.outbox WHERE wallet = $1", [w])).rows;

  // b stands by with the database for longer than TAKE_OVER_AFTER_MS: it could take over.
  await tickB(standby, 200_000);

  // a's sidecar leads; the database goes away while the server takes the email: its record fails.
  smtp.state.beforeAccepting = door.close;
  await a.tick(state);
  expect(smtp.mails).toHaveLength(1);
  smtp.state.beforeAccepting = undefined;
  // b meets the outage too.
  await expect(tickB(standby, 5000)).rejects.toThrow();

  // The outage outlasted the claim's lease; b's sidecar leads when the database is back and ticks
  // before a does. Meanwhile the application cleared the developer's email.
  await door.open();
  await db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  await db.query("UPDATE developers SET email = NULL WHERE wallet_address = $1", [wallet(3)]);
  await leader.client.query("SELECT pg_advisory_unlock_all()");
  const leaderB = await leadingSession(fake.url);
  ends.push(() => leaderB.client.end());
  const leading = { role: "leader", leaderPid: leaderB.pid } as LoopState;
  await tickB(leading, 60_000);
  expect(smtp.mails).toHaveLength(1);
  expect(await job(wallet(3))).toEqual([{ state: "pending", attempts: 1 }]); // neither sent again nor skipped

  // a, standby now, records its send at its next tick; b sends nothing more, then or later.
  await a.tick(standby);
  expect(await job(wallet(3))).toEqual([{ state: "sent", attempts: 1 }]);

  // A worker that never comes back (killed in its send) still has its job tried again: by b, once
  // it has had the database TAKE_OVER_AFTER_MS without a break.
  const gone = wallet(4);
  await fake.register(gone, "gina@example.test");
  await db.query(
    `INSERT INTO stakesync.outbox (kind, wallet, locked_by, locked_until, attempts)
     VALUES ('welcome_email', $1, 'gone:1:dead', now() - interval '1 second', 1)`,
    [gone],
  );
  await tickB(leading, 30_000);
  expect(smtp.mails).toHaveLength(1);
  await tickB(leading, 40_000);
  expect(smtp.mails).toHaveLength(2);
  expect(smtp.mails[1]?.to).toContain("gina@example.test");
  expect(await job(gone)).toEqual([{ state: "sent", attempts: 2 }]);
  await a.close();
  await b.close();
});

it("counts ticks further apart than 10 s as a break: a worker frozen or starved waits again before it takes over", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(5), "hana@example.test");
  await claimRanOut(db);
  let now = 0;
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]), 60_000, () => now);
  for (; now < 55_000; now += 5000) await worker.tick(state);
  now += 30_000; // frozen for 30 s
  await takesOverAfterWaiting(smtp, async () => {
    await worker.tick(state);
    now += 5000;
  });
  await worker.close();
});

it("gives up on a record that gets no answer, and records the send on a new connection once it can", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(2), "erin@example.test");
  // The sidecar's own pools, with the effects' query timeout cut to 3 s for the test.
  const { pool, httpPool } = createPools(fake.config, createLogger("silent"), { effectsQueryMs: 3000 });
  ends.push(() => Promise.all([pool.end(), httpPool.end()]));
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]));

  // While the server takes the email, a transaction takes the job's row: the record waits for
  // it, as one on a connection gone dark waits for an answer that does not come.
  const holder = new pg.Client({ connectionString: fake.url });
  await holder.connect();
  ends.push(() => holder.end());
  smtp.state.beforeAccepting = async () => {
    await holder.query("BEGIN; SELECT 1 FROM stakesync.outbox FOR UPDATE");
  };
  const outcome = await Promise.race([
    worker.tick(state).then(() => "ticked"),
    new Promise((resolve) => setTimeout(() => resolve("still waiting"), 15_000)),
  ]);
  expect(outcome).toBe("ticked");
  expect(smtp.mails).toHaveLength(1);
  // Cancelled by the server, not only given up on by the client: no statement is left waiting
  // there (each tick would leave one more, for as long as the lock is held).
  const waiting = await db.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
  );
  expect(waiting.rows).toEqual([{ n: 0 }]);

  // The transaction ends: the next tick has the send recorded, and nothing goes out again.
  smtp.state.beforeAccepting = undefined;
  await holder.query("ROLLBACK");
  await worker.tick(state);
  expect((await db.query("SELECT state, attempts FROM stakesync.outbox")).rows).toEqual([
    { state: "sent", attempts: 1 },
  ]);
  await db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(1);
  await worker.close();
});

it("cuts off a send that an SMTP server answers a line at a time, within the claim's lease", async () => {
  // The lease outlasts the longest send three times over: a send cut off is recorded failed
  // long before anyone may claim the job again.
  expect(LEASE_MS).toBeGreaterThanOrEqual(3 * SEND_DEADLINE_MS);

  // A tarpit: a greeting, then an EHLO answer of a line every 100 ms that never ends, so the
  // connection is never silent long enough for nodemailer's limit on silence.
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.write("220 tarpit.test ESMTP\r\n");
    socket.once("data", () => {
      const timer = setInterval(() => socket.write("250-tarpit.test still thinking\r\n"), 100);
      timers.add(timer);
      socket.on("close", () => clearInterval(timer));
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  ends.push(async () => {
    for (const timer of timers) clearInterval(timer);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const mailer = createMailer(`smtp://127.0.0.1:${port}`, "stakesync@example.test", 500);
  ends.push(() => mailer.close());
  const started = performance.now();
  const outcome = await mailer.send("dave@example.test", wallet(1)).catch((error: Error) => error);
  expect(String(outcome)).toMatch(/the SMTP server took more than 0\.5 s over one message/);
  expect(String(outcome)).not.toMatch(/dave@/);
  // Cut off by the deadline, not by nodemailer's limit on silence (the tarpit is never silent).
  expect(performance.now() - started).toBeLessThan(15_000);
  // And its connection closed, not left to trickle on.
  await waitFor("the connection closed", async () => [...sockets].every((socket) => socket.closed));
});

/** `pool`, with `after` run once a statement whose text matches `pattern` has answered. */
function onAnswer(pool: pg.Pool, pattern: RegExp, after: () => Promise<void> | void): pg.Pool {
  return new Proxy(pool, {
    get(target, key, receiver) {
      if (key !== "query") return Reflect.get(target, key, receiver);
      return async (text: string, values?: unknown[]) => {
        const result = await target.query(text, values);
        if (pattern.test(text)) await after();
        return result;
      };
    },
  });
}

const MAY_SEND = /locked_until > now\(\) \+ interval/;

it("sends nothing on a claim's answer that came too late (frozen after it), gives the claim back, and sends once when next asked in time", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(5), "gina@example.test");
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  let now = 0;
  let frozen = true;
  // The process stops right after maySend's answer, for as long as the lease: meanwhile another
  // worker could have taken the claim over and sent it. Before, it sent on that answer.
  const worker = new OutboxWorker(
    fake.config,
    onAnswer(pool, MAY_SEND, () => {
      if (frozen) now += LEASE_MS;
      frozen = false;
    }),
    createLogger("silent"),
    createMetrics([31337]),
    120_000,
    () => now,
  );
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(0);
  const job = async () =>
    (await db.query("SELECT state, attempts, locked_until IS NULL AS released FROM stakesync.outbox")).rows;
  // Given back: due at once, not after the lease (15 min) and the take-over wait.
  expect(await job()).toEqual([{ state: "pending", attempts: 1, released: true }]);
  await worker.tick(state);
  expect(smtp.mails.map((m) => m.to)).toEqual([["gina@example.test"]]);
  expect(await job()).toEqual([{ state: "sent", attempts: 2, released: true }]);
  await worker.close();
});

it("gives back a claim its sidecar lost leadership over before the send, so that the next leader sends it at once", async () => {
  const { smtp, fake, db, state, leader } = await welcomeDue(wallet(6), "hal@example.test");
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  // Leadership goes between the claim and maySend (a standby took over).
  const a = new OutboxWorker(
    fake.config,
    onAnswer(pool, /attempts = o\.attempts \+ 1/, async () => {
      await leader.client.query("SELECT pg_advisory_unlock_all()");
    }),
    createLogger("silent"),
    createMetrics([31337]),
  );
  await a.tick(state);
  expect(smtp.mails).toHaveLength(0);
  const next = await leadingSession(fake.url);
  ends.push(() => next.client.end());
  // A new leader's worker, which has had the database for no time: no take-over of a claim that
  // ran out, so before, it waited the lease and TAKE_OVER_AFTER_MS (17 minutes).
  const b = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]));
  await b.tick({ role: "leader", leaderPid: next.pid } as LoopState);
  expect(smtp.mails.map((m) => m.to)).toEqual([["hal@example.test"]]);
  expect((await db.query("SELECT state FROM stakesync.outbox")).rows).toEqual([{ state: "sent" }]);
  await a.close();
  await b.close();
});

it("tries a welcome the SMTP server defers (4xx) again without counting it toward dead, one job per pause; a 5xx answer still counts", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(7), "ivy@example.test");
  for (const [n, email] of [
    [8, "jay@example.test"],
    [9, "kim@example.test"],
  ] as const) {
    await fake.register(wallet(n), email);
    await db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [wallet(n)]);
  }
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  let now = 0;
  const config = { ...fake.config, retryAttempts: 1, retryDelayMs: 5000 };
  const worker = new OutboxWorker(config, pool, createLogger("silent"), createMetrics([31337]), 120_000, () => now);
  const jobs = async () =>
    (await db.query("SELECT wallet, state, failures FROM stakesync.outbox ORDER BY wallet")).rows.map(
      (r) => `${r.wallet.slice(-1)} ${r.state} ${r.failures}`,
    );
  // A relay that rate-limits (451) for a while: before, each due job failed at ten a tick and was
  // dead after RETRY_ATTEMPTS + 1 tries (about 35 s with the defaults).
  smtp.state.failing = true;
  await worker.tick(state);
  expect(smtp.attempts).toHaveLength(1); // one job, then a pause: not all three into the same answer
  await worker.tick(state);
  expect(smtp.attempts).toHaveLength(1); // paused RETRY_DELAY_MS
  for (let i = 0; i < 6; i++) {
    now += 10 * 60_000;
    await db.query("UPDATE stakesync.outbox SET run_at = now()");
    await worker.tick(state);
  }
  expect(smtp.attempts).toHaveLength(7);
  expect(await jobs()).toEqual(["7 pending 0", "8 pending 0", "9 pending 0"]);
  // Back: each goes out once.
  smtp.state.failing = false;
  now += 10 * 60_000;
  await db.query("UPDATE stakesync.outbox SET run_at = now()");
  await worker.tick(state);
  expect(smtp.mails.map((m) => m.to[0]).sort()).toEqual(["ivy@example.test", "jay@example.test", "kim@example.test"]);
  expect(await jobs()).toEqual(["7 sent 0", "8 sent 0", "9 sent 0"]);

  // A permanent answer (550) counts: dead after RETRY_ATTEMPTS + 1.
  await fake.register(wallet(10), "lee@example.test");
  await db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [wallet(10)]);
  smtp.state.rejected.add("lee@example.test");
  for (let i = 0; i < 2; i++) {
    now += 10 * 60_000;
    await db.query("UPDATE stakesync.outbox SET run_at = now() WHERE state = 'pending'");
    await worker.tick(state);
  }
  expect((await db.query("SELECT state, failures FROM stakesync.outbox WHERE wallet = $1", [wallet(10)])).rows).toEqual(
    [{ state: "dead", failures: 2 }],
  );
  await worker.close();
});

it("counts a tick that lasted longer than 10 s as a break too: frozen inside it, a worker waits again before it takes over", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(11), "max@example.test");
  await claimRanOut(db);
  let now = 0;
  let freezeNext = false;
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  // Frozen for 30 s right after its probe's answer, inside the tick (a standby's write each tick).
  const probe = /SET state = state WHERE false/;
  const worker = new OutboxWorker(
    fake.config,
    onAnswer(pool, probe, () => {
      if (freezeNext) now += 30_000;
      freezeNext = false;
    }),
    createLogger("silent"),
    createMetrics([31337]),
    60_000,
    () => now,
  );
  const standby = { ...state, role: "standby", leaderPid: null } as LoopState;
  for (; now < 55_000; now += 5000) await worker.tick(standby);
  freezeNext = true;
  await worker.tick(standby);
  // Leading right after: before, it took the claim over at once, its 60 s counted across the freeze.
  await takesOverAfterWaiting(smtp, async () => {
    await worker.tick(state);
    now += 5000;
  });
  await worker.close();
});

it("leaves its own sends out of a tick's measure: a relay slow to answer does not keep it from taking over a claim that ran out", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(12), "ned@example.test");
  // A worker that died in the middle of the send left its claim; it ran out.
  await claimRanOut(db);
  let now = 0;
  // The relay takes 15 s over each message (a scan before it answers).
  smtp.state.beforeAccepting = async () => {
    now += 15_000;
  };
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]), 60_000, () => now);
  // Welcomes keep coming, one a tick: each tick sends one (and lasts over 10 s by the clock).
  for (let n = 0; n < 12; n++, now += 1000) {
    await fake.register(wallet(100 + n), `dev${n}@example.test`);
    await db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [wallet(100 + n)]);
    await worker.tick(state);
  }
  // Before: every tick counted as a break, and the claim that ran out was never taken over.
  expect(smtp.mails.map((m) => m.to[0])).toContain("ned@example.test");
  await worker.close();
});

it("sends nothing for a job whose claim ran out for the third time, and goes on to the next job", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(9), "ines@example.test");
  await claimRanOut(db);
  await db.query("UPDATE stakesync.outbox SET lapses = 2");
  await fake.register(wallet(10), "jo@example.test");
  await db.query(
    "INSERT INTO stakesync.outbox (kind, wallet, run_at) VALUES ('welcome_email', $1, now() + interval '1 ms')",
    [wallet(10)],
  );
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]), 0);
  await worker.tick(state);
  expect(smtp.mails.map((mail) => mail.to)).toEqual([["jo@example.test"]]);
  const { rows } = await db.query("SELECT wallet, state FROM stakesync.outbox ORDER BY id");
  expect(rows).toEqual([
    { wallet: wallet(9), state: "dead" },
    { wallet: wallet(10), state: "sent" },
  ]);
  await worker.close();
});

it("sends no welcome while the start's check of the configuration has not answered, nor ever after a 'wrong'", async () => {
  const { smtp, fake, state } = await welcomeDue(wallet(11), "kay@example.test");
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  let answer: (ok: boolean) => void = () => undefined;
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337])).holdSendsUntil(
    new Promise<boolean>((resolve) => {
      answer = resolve;
    }),
  );
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(0);
  answer(true);
  await new Promise((resolve) => setImmediate(resolve));
  await worker.tick(state);
  expect(smtp.mails.map((m) => m.to)).toEqual([["kay@example.test"]]);
  await worker.close();

  // A "wrong" answer (a STAKE_DECIMALS 10^12 off: dust activates): nothing goes out, ever.
  await fake.register(wallet(12), "lee@example.test");
  await fake.db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [wallet(12)]);
  const held = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337])).holdSendsUntil(
    Promise.resolve(false),
  );
  await new Promise((resolve) => setImmediate(resolve));
  await held.tick(state);
  expect(smtp.mails).toHaveLength(1);
  await held.close();

  // Released, then a later re-check says "wrong": nothing more from then on, whatever else answers.
  const later = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337])).holdSendsUntil(
    Promise.resolve(true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  later.holdSends();
  later.holdSendsUntil(Promise.resolve(true));
  await new Promise((resolve) => setImmediate(resolve));
  await later.tick(state);
  expect(smtp.mails).toHaveLength(1);
  await later.close();
});

it("stops a batch under way once its sends are held (a re-check found the configuration wrong), the claim given back", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(13), "mo@example.test");
  await fake.register(wallet(14), "ned@example.test");
  await db.query(
    "INSERT INTO stakesync.outbox (kind, wallet, run_at) VALUES ('welcome_email', $1, now() + interval '1 ms')",
    [wallet(14)],
  );
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]));
  // The verdict comes while the first email is being taken.
  smtp.state.beforeAccepting = async () => worker.holdSends();
  await worker.tick(state);
  expect(smtp.mails).toHaveLength(1);
  const { rows } = await db.query("SELECT state, locked_until IS NULL AS free FROM stakesync.outbox ORDER BY id");
  expect(rows).toEqual([
    { state: "sent", free: true },
    { state: "pending", free: true },
  ]);
  await worker.close();
});

it("fences its claims and sends by its leader's server as well as its pid", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(15), "ola@example.test");
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]));
  // The loop's state names another server (its pools reach the new primary after a failover).
  await worker.tick({ ...state, leaderServer: "1234567890.123456" });
  expect(smtp.mails).toHaveLength(0);
  const { rows } = await db.query<{ server: string }>(`SELECT ${SERVER_START} AS server`);
  await worker.tick({ ...state, leaderServer: rows[0]?.server ?? null });
  expect(smtp.mails).toHaveLength(1);
  await worker.close();
});

it("records a failed send whose record failed before any other claim, so that its own claim run out is not sent again uncounted", async () => {
  const { smtp, fake, db, state } = await welcomeDue(wallet(16), "pia@example.test");
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  const worker = new OutboxWorker(fake.config, pool, createLogger("silent"), createMetrics([31337]), 0);
  // The server refuses for good; recording the failure fails (a blip of the database, here a
  // trigger refusing the failure's UPDATE).
  smtp.state.failing = true;
  smtp.state.failCode = 554;
  await db.query(`CREATE FUNCTION refuse_failure() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'not now'; END $$`);
  await db.query(`CREATE TRIGGER refuse_failure BEFORE UPDATE ON stakesync.outbox FOR EACH ROW
                    WHEN (NEW.last_error IS NOT NULL) EXECUTE FUNCTION refuse_failure()`);
  await worker.tick(state);
  // Its claim runs out (15 minutes on); the same worker, which counts no lapse of its own, takes
  // it again only after the failure is recorded: nothing is claimed while it cannot be.
  await db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  const claims = async () => (await db.query("SELECT attempts, failures FROM stakesync.outbox")).rows[0];
  await worker.tick(state);
  expect(await claims()).toEqual({ attempts: 1, failures: 0 });
  await db.query("DROP TRIGGER refuse_failure ON stakesync.outbox");
  await worker.tick(state);
  // Recorded first (counted: a 5xx), then the job backs off; before, the failure was lost and
  // each lease's claim sent it again, uncounted.
  expect(await claims()).toMatchObject({ failures: 1 });
  await worker.close();
});

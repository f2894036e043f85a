/**
 * A step writes its developers itself (write-in-step.ts), a bulk one (more than
 * TOGETHER_MAX_EVENTS events) and a realtime block's alike: the same outcome as the queue's path,
 * and the queue's handling of the application's transactions and refusals, on fabricated Ponder
 * tables.
 */

import pg from "pg";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { skipWithoutEmail } from "../../sidecar/effects/outbox";
import { leaderSession } from "../../sidecar/leader";
import { createMetrics } from "../../sidecar/metrics";
import type { Change } from "../../sidecar/sync/apply-developers";
import { SyncLoop } from "../../sidecar/sync/loop";
import { noteWriteFailing } from "../../sidecar/sync/sql/write-failing";
import { type StepResult, TOGETHER_MAX_EVENTS } from "../../sidecar/sync/step";
import {
  applicationTransaction,
  CHAIN,
  type Fake,
  fakePonder,
  syncOutcome as outcome,
  patternEvents,
  refuseUpdates,
  roundsAroundHold,
  wallet,
} from "./ponder-fake";

const fakes: Fake[] = [];
let loop: SyncLoop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(env: Record<string, string> = {}): Promise<Fake> {
  const f = await fakePonder({ MIN_STAKE: "5", ...env });
  fakes.push(f);
  return f;
}

/** The leader's loop on `f`, its log lines and the changes it reported. */
async function startLoop(f: Fake, metrics = createMetrics([CHAIN])) {
  const lines: { msg: string }[] = [];
  const changes: Change[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  loop = new SyncLoop(f.config, log, metrics, new Map([[CHAIN, { block: 100, at: Date.now() }]]), {
    onChanges: (c) => changes.push(...c),
  });
  loop.start();
  return { lines, changes };
}

/**
 * An application trigger on developers that fails every UPDATE with `body`'s error (by default
 * a function it cannot find), on either path of the write. Dropped with `DROP TRIGGER broken ON developers`.
 */
async function breakDevelopersWrites(f: Fake, body = "PERFORM no_such_function()") {
  await f.db.query(`
    CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body}; RETURN NEW; END $$;
    CREATE TRIGGER broken BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION broken();`);
}

/**
 * Makes the writes into the stakes numbered `which` (from 1, from now on) fail with an error that
 * is not the developers write's (a disk full): a statement of a step's last round trip besides its write.
 */
async function failStakeWrites(f: Fake, which: number[]) {
  await f.db.query(`
    CREATE SEQUENCE stake_writes;
    CREATE FUNCTION fail_stake_writes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('stake_writes') IN (${which.join(", ")}) THEN
        RAISE EXCEPTION 'not the developers write' USING ERRCODE = 'disk_full';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER fail_stake_writes AFTER INSERT ON stakesync.chain_stake
      FOR EACH STATEMENT EXECUTE FUNCTION fail_stake_writes();`);
}

const WALLETS = 200;
const BASE = 0x1000;
const EVENTS = 2000;

/**
 * Ponder commits EVENTS events over WALLETS wallets (patternEvents: a wallet's running sum reaches
 * MIN_STAKE, 5, at its third event), and its checkpoint two blocks above the last.
 */
async function bulk(f: Fake, { from = 1, base = BASE } = {}) {
  await patternEvents(f, { from, to: from + EVENTS - 1, wallets: WALLETS, base });
  const last = 1 + Math.floor((from + EVENTS - 1) / 100);
  await f.progress({ latest: last + 2, safe: last + 2, finalized: last + 2 });
}

/**
 * The application's rows, the same in each fake: most wallets registered, with an email or
 * without, one already active before (another system's, with staked_at: a historic welcome).
 */
async function register(f: Fake) {
  await f.db.query(
    `INSERT INTO developers (wallet_address, email, status, staked_at)
     SELECT '0x' || lpad(to_hex(${BASE} + n), 40, '0'), CASE WHEN n % 7 = 3 THEN NULL ELSE 'd' || n || '@example.com' END,
            CASE WHEN n = 5 THEN 'inactive' ELSE 'pending' END,
            CASE WHEN n = 5 THEN timestamptz '2024-01-01' END
       FROM generate_series(0, ${WALLETS - 1}) n WHERE n % 10 <> 9`,
  );
}

/**
 * One round whose step waits, at `where` (a trigger's timing and table: by default written into
 * the stakes, once its snapshot is taken and before the developers are looked up), until
 * `whilePaused` has run in a session of the test's own. Its wait has no bound (the step bounds
 * its waits).
 */
async function roundPaused(
  f: Fake,
  whilePaused: (test: pg.Client) => Promise<void>,
  where = "AFTER INSERT ON stakesync.chain_stake",
  options: Parameters<Fake["round"]>[0] = {},
) {
  await f.db.query(`
    CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM set_config('lock_timeout', '0', true);
      PERFORM pg_advisory_xact_lock_shared(4242);
      RETURN NULL;
    END $$;
    CREATE TRIGGER pause ${where} FOR EACH STATEMENT EXECUTE FUNCTION pause();`);
  const test = new pg.Client({ connectionString: f.url });
  await test.connect();
  try {
    await test.query("SELECT pg_advisory_lock(4242)");
    const round = f.round(options);
    round.catch(() => undefined); // awaited below, once the test's session is done with it
    await waitFor("the step to wait for the lock", async () => {
      const { rows } = await test.query(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted",
      );
      return rows.length > 0;
    });
    await whilePaused(test);
    await test.query("SELECT pg_advisory_unlock(4242)");
    return await round;
  } finally {
    await test.end();
  }
}

/** The SQLSTATE of the error a bulk step's own write failed with. */
const fellBackCode = (round: { step: StepResult }) =>
  round.step.kind === "stepped" ? (round.step.fellBack as { code?: string } | undefined)?.code : undefined;

describe("a bulk step's own developers write", () => {
  it("writes what the queue's path writes: rows, staked_at, audit rows, welcome jobs, cursor; queues nothing", async () => {
    const [inStep, queued] = await Promise.all([fake(), fake()]);
    for (const f of [inStep, queued]) {
      await register(f);
      await bulk(f);
    }
    const a = await inStep.round();
    const b = await queued.round({ writeInStep: false });
    expect(a.step.kind === "stepped" && a.step.chains[0]?.added).toBeGreaterThan(TOGETHER_MAX_EVENTS);
    // The paths taken: the step's own write, and the queue's.
    expect(a.step.kind === "stepped" && a.step.written.length).toBe(a.changes.length);
    expect(b.step.kind === "stepped" && b.step.written.length).toBe(0);
    expect(a.changes.length).toBe(180);
    // Made pending by the step's own write (its snapshot may lack a row of the wallet inserted
    // since), skipped by the worker's sweep, which reads the table as it is.
    expect((await outcome(inStep)).outbox.filter((o) => o.skip_reason === "no_email")).toHaveLength(0);
    await skipWithoutEmail(inStep.db, inStep.config.developersTable.sql);
    const [one, other] = [await outcome(inStep), await outcome(queued)];
    expect(one).toEqual(other);
    // What it wrote, stated: first activations with the replayed crossing's time, each welcome
    // as the rules decide it, and an empty queue.
    expect(one.queue).toEqual([]);
    expect(one.outbox.filter((o) => o.skip_reason === "historic").map((o) => o.wallet)).toEqual([wallet(BASE + 5)]);
    expect(one.outbox.filter((o) => o.skip_reason === "no_email")).toHaveLength(26);
    expect(one.outbox.filter((o) => o.state === "pending")).toHaveLength(153);
    const first = one.developers.find((d) => d.wallet === wallet(BASE));
    // wallet BASE's events: g = 200, 400, … (block 3, 5, …): its fourth, g = 800, is in block 9.
    expect(first).toMatchObject({
      status: "active",
      stake_amount: "14.000000",
      staked_at: new Date((1_700_000_000 + 9 * 12) * 1000),
    });
  });

  it("writes what the queue's path writes after a reorg: the orphaned stakes taken back, reason reorg, first activations found again", async () => {
    const [inStep, queued] = await Promise.all([fake(), fake()]);
    const rounds = async (f: Fake, writeInStep: boolean) => {
      await register(f);
      // Applied, not final yet (Ponder's finalized block 0): in the ledger one by one.
      await f.index(
        [0, 1, 2].map((n) => ({ developer: wallet(BASE + n), amount: 9n * 1_000_000n, block: 10, log: n })),
        12,
      );
      await f.round({ writeInStep });
      // The reorg: those blocks orphaned, then Ponder indexes the new fork's 2,000 events, and
      // another checkpoint confirms the orphans gone (the first sighting waits: removal-guard.ts).
      await f.deleteAbove(9);
      await bulk(f, { from: 1001 });
      const first = await f.round({ writeInStep });
      await f.progress({ latest: 34, safe: 34, finalized: 34 });
      return { first, second: await f.round({ writeInStep }) };
    };
    const a = await rounds(inStep, true);
    const b = await rounds(queued, false);
    expect(a.first.step).toMatchObject({ kind: "stepped", deferred: [CHAIN] });
    expect(a.second.step.kind === "stepped" && a.second.step.chains[0]?.removed).toBe(3);
    expect(a.second.changes).toHaveLength(180);
    expect(a.second.step.kind === "stepped" && a.second.step.written.length).toBe(180);
    expect(b.second.step.kind === "stepped" && b.second.step.written.length).toBe(0);
    // The worker's sweep of jobs without an email (see the test above).
    await skipWithoutEmail(inStep.db, inStep.config.developersTable.sql);
    const [one, other] = [await outcome(inStep), await outcome(queued)];
    expect(one).toEqual(other);
    // The orphaned stake of wallet BASE is gone from its amount, the correction audited as a reorg.
    expect(one.audit.filter((r) => r.wallet === wallet(BASE)).map((r) => r.reason)).toEqual(["stake", "reorg"]);
    expect(one.developers.find((d) => d.wallet === wallet(BASE))).toMatchObject({ stake_amount: "14.000000" });
  });

  it("steps on a session a pool handed over with an older sidecar's step tables, once its term's session set-up ran", async () => {
    const f = await fake();
    await register(f);
    await bulk(f);
    // `stale` as sidecars before stale.raw made it, left on the server connection by a pool that
    // does not reset its connections between clients.
    await f.db.query("CREATE TEMP TABLE stale (wallet text, activating boolean)");
    await expect(f.round()).rejects.toThrow(/column "raw" of relation "stale" does not exist/);
    await f.db.query(leaderSession(3600));
    const round = await f.round();
    expect(round.step.kind === "stepped" && round.step.written.length).toBe(180);
  });

  it("leaves a row the application holds to the queue, written once it commits, its columns kept", async () => {
    const f = await fake();
    await register(f);
    await f.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const held = wallet(BASE + 1);
    const { first } = await roundsAroundHold(
      f,
      held,
      "UPDATE developers SET last_seen = now() WHERE wallet_address = $1",
      () => bulk(f),
    );
    expect(first.step.kind === "stepped" && first.step.written.length).toBe(179);
    expect(first.changes.map((c) => c.wallet)).not.toContain(held);
    const { rows } = await f.db.query("SELECT last_seen FROM developers WHERE wallet_address = $1", [held]);
    expect(rows[0]?.last_seen).not.toBeNull();
  });

  it("queues a wallet whole when the application holds one of its two rows (letter case), and writes both once it commits", async () => {
    const f = await fake();
    await register(f);
    const w = wallet(BASE + 11); // 0x…100b: a letter to differ in case
    await f.db.query("INSERT INTO developers (wallet_address) VALUES ($1)", [w.toUpperCase().replace("0X", "0x")]);
    const app = await applicationTransaction(f.url, "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE", [
      w,
    ]);
    try {
      await bulk(f);
      const first = await f.round();
      expect(first.step.kind === "stepped" && first.step.written.length).toBe(179);
      expect(first.held).toBe(1);
      await app.query("COMMIT");
    } finally {
      await app.end();
    }
    // Its other row written alone, the wallet left no queue entry: the held row stayed pending
    // until a reconciliation.
    await f.round();
    const { rows } = await f.db.query("SELECT status FROM developers WHERE lower(wallet_address) = $1", [w]);
    expect(rows).toEqual([{ status: "active" }, { status: "active" }]);
  });

  it("runs the step again on the queue's path when a row is refused: that row a dead letter, every other written", async () => {
    const f = await fake();
    await register(f);
    const refused = wallet(BASE + 2);
    await refuseUpdates(f, `NEW.wallet_address = '${refused}'`);
    await bulk(f);
    const round = await f.round();
    expect(fellBackCode(round)).toBe("P0001");
    expect(round.step.kind === "stepped" && round.step.written).toEqual([]);
    expect(round.refused.map((r) => r.wallet)).toEqual([refused]);
    expect(round.changes).toHaveLength(179);
    const { rows } = await f.db.query("SELECT wallet, state FROM stakesync.developer_queue");
    expect(rows).toEqual([{ wallet: refused, state: "dead" }]);
  });

  it("runs the step again on the queue's path when its write outlasts its bound (a slow application trigger)", async () => {
    const f = await fake();
    await register(f);
    const slow = wallet(BASE + 4);
    // The write holds the step's lock on Ponder's events: a slow trigger's row goes to the
    // queue's path, which holds none. The trigger takes 1 s; the bound here is 0.2 s.
    await f.db.query(`
      CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_sleep(1);
        RETURN NEW;
      END $$;
      CREATE TRIGGER slow BEFORE UPDATE ON developers FOR EACH ROW
        WHEN (NEW.wallet_address = '${slow}') EXECUTE FUNCTION slow();`);
    await bulk(f);
    const round = await f.round({ writeInStepMaxMs: 200 });
    expect(fellBackCode(round)).toBe("57014");
    expect(round.changes).toHaveLength(180);
    expect(await f.developer(slow)).toMatchObject({ status: "active" });
  });

  it("stamps updated_at and the audit rows with the write's time, not the step's beginning", async () => {
    const f = await fake();
    await register(f);
    await bulk(f);
    let released = new Date(0);
    const done = await roundPaused(f, async (test) => {
      released = (await test.query<{ now: Date }>("SELECT clock_timestamp() AS now")).rows[0]?.now as Date;
    });
    expect(done.step.kind === "stepped" && done.step.written).toHaveLength(180);
    // An application that polls updated_at past a time it has seen finds these rows.
    const { rows } = await f.db.query<{ developers: Date; audit: Date }>(
      `SELECT (SELECT min(updated_at) FROM developers WHERE status = 'active') AS developers,
              (SELECT min(created_at) FROM stakesync.audit) AS audit`,
    );
    expect(rows[0]?.developers.getTime()).toBeGreaterThanOrEqual(released.getTime());
    expect(rows[0]?.audit.getTime()).toBeGreaterThanOrEqual(released.getTime());
  });

  it("commits nothing when its connection is lost in the middle of its write (PostgreSQL restarting), and the round fails with the connection's error", async () => {
    const f = await fake();
    f.db.on("error", () => undefined); // the terminated session's, also reported by the round
    await register(f);
    await bulk(f);
    const { rows: me } = await f.db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const round = roundPaused(
      f,
      async (test) => {
        await test.query("SELECT pg_terminate_backend($1)", [me[0]?.pid]);
      },
      // Inside the step's own write, with the cursor and the queue still to come in its round trip.
      "BEFORE UPDATE ON developers",
    );
    // The connection's error, whichever statement meets it first (the rerun on the queue's path
    // meets the same dead connection).
    await expect(round).rejects.toThrow(/terminat|connection/i);
    const { rows } = await f.pool().query(
      `SELECT (SELECT count(*)::int FROM stakesync.cursor) AS cursors, (SELECT count(*)::int FROM stakesync.audit) AS audit,
                (SELECT count(*)::int FROM stakesync.outbox) AS jobs, (SELECT count(*)::int FROM stakesync.developer_queue) AS queued,
                (SELECT count(*)::int FROM developers WHERE stake_amount <> 0) AS written`,
    );
    expect(rows[0]).toEqual({ cursors: 0, audit: 0, jobs: 0, queued: 0, written: 0 });
  });

  it("runs the step again when the application changed a row after the step's snapshot (40001), keeping its change", async () => {
    const f = await fake();
    await register(f);
    await f.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const changed = wallet(BASE + 3);
    await bulk(f);
    const done = await roundPaused(f, async (test) => {
      await test.query("UPDATE developers SET last_seen = now() WHERE wallet_address = $1", [changed]);
    });
    expect(fellBackCode(done)).toBe("40001");
    expect(done.changes).toHaveLength(180);
    expect(await f.developer(changed)).toMatchObject({ status: "active" });
    const { rows } = await f.db.query("SELECT last_seen FROM developers WHERE wallet_address = $1", [changed]);
    expect(rows[0]?.last_seen).not.toBeNull();
    const { rows: queue } = await f.db.query("SELECT count(*)::int AS n FROM stakesync.developer_queue");
    expect(queue[0]?.n).toBe(0);
  });

  it("is reported (metrics, logs, the outbox's wake-up) also when the queue's write after it fails the round", async () => {
    const f = await fake({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
    await register(f);
    // The term's first round, a reconciliation (which queues), done first.
    const { changes } = await startLoop(f);
    await waitFor("a committed round", () => loop?.state.lastSyncAt !== null);
    const held = wallet(BASE + 1);
    // The application holds one row (queued by the step), and a statement-level trigger of its
    // refuses the queue's write (READ COMMITTED), not the step's (REPEATABLE READ).
    await f.db.query(`
      CREATE FUNCTION refuse_rc() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('transaction_isolation') = 'read committed' THEN RAISE EXCEPTION 'no'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER refuse_rc BEFORE UPDATE ON developers FOR EACH STATEMENT EXECUTE FUNCTION refuse_rc();`);
    const app = await applicationTransaction(f.url, "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE", [
      held,
    ]);
    try {
      await bulk(f);
      await waitFor("the failed rounds", () => (loop?.state.consecutiveErrors ?? 0) >= 2);
      // Committed by the step, reported once, though every round fails at the queue's write.
      expect(changes).toHaveLength(179);
      expect(new Set(changes.map((c) => c.wallet)).size).toBe(179);
      await app.query("ROLLBACK");
    } finally {
      await app.end();
    }
  });

  it("queues for a while after one failed: the next bulk step does not run twice", async () => {
    const f = await fake({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
    await register(f);
    const [first, second] = [wallet(BASE + 2), wallet(BASE + 0x1000 + 2)];
    await f.db.query(
      `INSERT INTO developers (wallet_address, email) SELECT '0x' || lpad(to_hex(${BASE + 0x1000} + n), 40, '0'), NULL
         FROM generate_series(0, ${WALLETS - 1}) n`,
    );
    await refuseUpdates(f, `NEW.wallet_address IN ('${first}', '${second}')`);
    // The term's first round, a reconciliation (which queues), done first.
    const { lines } = await startLoop(f);
    await waitFor("a committed round", () => loop?.state.lastSyncAt !== null);
    await bulk(f);
    const deadLetters = async () =>
      (await f.db.query("SELECT wallet FROM stakesync.developer_queue WHERE state = 'dead' ORDER BY wallet")).rows.map(
        (r) => r.wallet,
      );
    await waitFor("the first refused", async () => (await deadLetters()).length === 1);
    // Another wallet's bulk, with a row refused in it too: queued at once, not written in the step first.
    await bulk(f, { from: 1 + EVENTS, base: BASE + 0x1000 });
    await waitFor("the second refused", async () => (await deadLetters()).length === 2);
    expect(await deadLetters()).toEqual([first, second]);
    expect(lines.filter((l) => l.msg.startsWith("a step's own developers write failed"))).toHaveLength(1);
    expect(loop?.state.consecutiveErrors).toBe(0);
  });
});

describe("a realtime block's own developers write", () => {
  /** Three developers registered, then a block that activates them (MIN_STAKE 5), Ponder ready. */
  async function block(f: Fake) {
    const wallets = [0, 1, 2].map((n) => wallet(0x7000 + n)) as [string, string, string];
    for (const w of wallets) await f.register(w, "dev@example.com");
    await f.round(); // their registrations, nothing to write yet
    await f.index(
      wallets.map((w, log) => ({ developer: w, amount: 5n * 10n ** 6n, block: 10, log })),
      12,
    );
    return wallets;
  }
  const queued = async (f: Fake) =>
    (await f.db.query("SELECT wallet, state FROM stakesync.developer_queue ORDER BY wallet")).rows;

  it("writes the block's developers in the step's own commit, nothing through the queue", async () => {
    const f = await fake();
    const wallets = await block(f);
    const round = await f.round();
    expect(round.step.kind === "stepped" && round.step.written.map((c) => c.wallet).sort()).toEqual(wallets);
    expect(round.step.kind === "stepped" && round.step.pending).toEqual([]);
    for (const w of wallets) expect(await f.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    const { rows } = await f.db.query("SELECT count(*)::int AS n FROM stakesync.outbox WHERE kind = 'welcome_email'");
    expect(rows[0]?.n).toBe(3);
    // Not written to the queue and deleted again: no row ever went in.
    const { rows: stats } = await f.db.query(
      "SELECT n_tup_ins::int AS n FROM pg_stat_xact_user_tables WHERE relname = 'developer_queue'",
    );
    expect(stats[0]?.n ?? 0).toBe(0);
    expect(await queued(f)).toEqual([]);
  });

  it("runs the step again on the queue's path when the application changed a row after its snapshot (40001)", async () => {
    const f = await fake();
    await f.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const [changed, ...others] = await block(f);
    // The usual way (a plain block's round trip runs again the usual way first, below).
    const usual = { plainBlock: false };
    const done = await roundPaused(
      f,
      async (test) => {
        await test.query("UPDATE developers SET last_seen = now() WHERE wallet_address = $1", [changed]);
      },
      undefined,
      usual,
    );
    expect(fellBackCode(done)).toBe("40001");
    expect(done.changes.map((c) => c.wallet).sort()).toEqual([changed, ...others].sort());
    const { rows } = await f.db.query("SELECT status, last_seen FROM developers WHERE wallet_address = $1", [changed]);
    expect(rows[0]).toMatchObject({ status: "active" });
    expect(rows[0]?.last_seen).not.toBeNull();
    expect(await queued(f)).toEqual([]);
  });

  it("runs the step again on the queue's path when a row is refused: that row a dead letter, the others written", async () => {
    const f = await fake();
    const [refused, ...others] = await block(f);
    await refuseUpdates(f, `NEW.wallet_address = '${refused}'`);
    const round = await f.round();
    expect(fellBackCode(round)).toBe("P0001");
    expect(round.refused.map((r) => r.wallet)).toEqual([refused]);
    expect(round.changes.map((c) => c.wallet).sort()).toEqual(others);
    expect(await queued(f)).toEqual([{ wallet: refused, state: "dead" }]);
  });

  it("runs the step again on the queue's path when its write outlasts a block's bound, far below a bulk step's", async () => {
    const f = await fake();
    const [slow, ...others] = await block(f);
    // The write holds the step's lock on Ponder's events: a trigger of 3 s in the step's
    // (REPEATABLE READ) write, none in the queue's, held Ponder's reorgs at each block for 3 s under
    // the bulk bound (10 s).
    await f.db.query(`
      CREATE SEQUENCE slow_tries;
      CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('transaction_isolation') = 'repeatable read' THEN
          PERFORM nextval('slow_tries');
          PERFORM pg_sleep(3);
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER slow BEFORE UPDATE ON developers FOR EACH ROW
        WHEN (NEW.wallet_address = '${slow}') EXECUTE FUNCTION slow();`);
    const round = await f.round({ writeInStepMaxMs: undefined });
    expect(fellBackCode(round)).toBe("57014");
    expect(round.changes.map((c) => c.wallet).sort()).toEqual([slow, ...others].sort());
    // Waited for once: a plain block's round trip whose own write ran out of its bound falls back
    // at once, not after the usual way's write waited as long again.
    const { rows } = await f.db.query<{ n: string }>("SELECT last_value::text AS n FROM slow_tries");
    expect(rows).toEqual([{ n: "1" }]);
  });

  it("counts a plain block's failed round trip, and logs the first of a term once", async () => {
    const f = await fake();
    const wallets = await block(f);
    const metrics = createMetrics([CHAIN]);
    const { lines } = await startLoop(f, metrics);
    await waitFor("the block written", async () => (await f.developer(wallets[0]))?.status === "active");
    // Then the first and the third write into the stakes fail: each the plain block's round trip
    // of a block, run again the usual way, whose write (the second, the fourth) succeeds.
    await failStakeWrites(f, [1, 3]);
    const cursor = async () => (await f.db.query("SELECT block::int FROM stakesync.cursor")).rows[0]?.block;
    await f.index([{ developer: wallet(0x7010), amount: 1n, block: 13 }], 15);
    await waitFor("the next block synced", async () => (await cursor()) === 13);
    await f.index([{ developer: wallet(0x7011), amount: 1n, block: 16 }], 18);
    await waitFor("the block after synced", async () => (await cursor()) === 16);
    expect(await metrics.registry.metrics()).toMatch(/^stakesync_sync_plain_stops_total\{reason="error"\} 2$/m);
    expect(lines.filter((l) => l.msg.startsWith("a realtime block's one round trip failed"))).toHaveLength(1);
    expect(loop?.state.consecutiveErrors).toBe(0);
  });

  it("runs a plain block again the usual way, in a snapshot of its own, when the application changed a row after its snapshot", async () => {
    const f = await fake();
    await f.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const wallets = await block(f);
    const done = await roundPaused(f, async (test) => {
      await test.query("UPDATE developers SET last_seen = now() WHERE wallet_address = $1", [wallets[0]]);
    });
    // Not taken for the write's failure: the usual way's snapshot has the application's change,
    // and its own write writes every developer; nothing queued, no fall-back for ten minutes.
    expect(done.step).toMatchObject({ kind: "stepped", plainStopped: "error" });
    expect(fellBackCode(done)).toBeUndefined();
    expect(done.step.kind === "stepped" && done.step.written.map((c) => c.wallet).sort()).toEqual(wallets);
    expect(await queued(f)).toEqual([]);
  });

  it("takes an application trigger's refusal with SQLSTATE SS001 for a refusal, not for the server's stop", async () => {
    const f = await fake();
    const [refused, ...others] = await block(f);
    await f.db.query(`
      CREATE FUNCTION refuse_ss001() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.wallet_address = '${refused}' THEN RAISE EXCEPTION 'ours' USING ERRCODE = 'SS001'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_ss001 BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION refuse_ss001();`);
    const round = await f.round();
    // The plain block's round trip failed on it, and so did the usual way's own write after it.
    expect(round.step).toMatchObject({ kind: "stepped", plainStopped: "error" });
    expect(fellBackCode(round)).toBe("SS001");
    expect(round.refused.map((r) => r.wallet)).toEqual([refused]);
    expect(round.changes.map((c) => c.wallet).sort()).toEqual(others);
    expect(await queued(f)).toEqual([{ wallet: refused, state: "dead" }]);
    expect((await f.db.query("SELECT block::int FROM stakesync.cursor")).rows).toEqual([{ block: 10 }]);
  });

  it("fails the round as any step's error when another statement of its last round trip fails, not as its write's", async () => {
    const f = await fake();
    const wallets = await block(f);
    // Once: the stakes' write fails the step (a disk full). A refusal's code there (a trigger's
    // RAISE, a CHECK) cannot be told from the developers write's, and is taken for it.
    await failStakeWrites(f, [1]);
    // The usual way's last round trip (a plain block's runs again the usual way, below).
    await expect(f.round({ plainBlock: false })).rejects.toMatchObject({ message: "not the developers write" });
    // Run again, it writes every developer itself: it was never taken for its write's failure.
    const round = await f.round();
    expect(fellBackCode(round)).toBeUndefined();
    expect(round.step.kind === "stepped" && round.step.written.map((c) => c.wallet).sort()).toEqual(wallets);
  });

  it("runs a plain block again the usual way when another statement of its round trip fails, in the same round", async () => {
    const f = await fake();
    const wallets = await block(f);
    await failStakeWrites(f, [1]);
    const round = await f.round();
    expect(round.step).toMatchObject({ kind: "stepped", plainStopped: "error" });
    expect(fellBackCode(round)).toBeUndefined();
    expect(round.step.kind === "stepped" && round.step.written.map((c) => c.wallet).sort()).toEqual(wallets);
  });

  it("writes what the usual way writes, block by block: activations, an unstake, a registration, a reorg", async () => {
    const [plain, usual] = await Promise.all([fake(), fake()]);
    const [a, b, c] = [0, 1, 2].map((n) => wallet(0x7100 + n)) as [string, string, string];
    const results: { plain: unknown[]; usual: unknown[] } = { plain: [], usual: [] };
    const stops: unknown[] = [];
    for (const [f, plainBlock] of [
      [plain, true],
      [usual, false],
    ] as const) {
      const rounds = results[plainBlock ? "plain" : "usual"];
      const round = async () => {
        const r = await f.round({ plainBlock });
        rounds.push(r.step.kind === "stepped" && { chains: r.step.chains, deferred: r.step.deferred });
        if (plainBlock) stops.push(r.step.kind === "stepped" ? r.step.plainStopped : r.step.kind);
      };
      await f.register(a, "a@example.com");
      await f.register(b, "b@example.com");
      await round();
      await f.index([{ developer: a, amount: 5n * 10n ** 6n, block: 10, tx: "0x0a" }], 12);
      await round();
      await f.index(
        [
          { developer: b, amount: 7n * 10n ** 6n, block: 13, tx: "0x0b" },
          { developer: c, amount: 6n * 10n ** 6n, block: 13, log: 1, tx: "0x0c" },
        ],
        14,
      );
      await round();
      await f.register(c, "c@example.com"); // between blocks: c's stake is confirmed already
      await round();
      await f.index([{ developer: a, amount: 3n * 10n ** 6n, block: 15, kind: "unstaked", tx: "0x0d" }], 16);
      await round();
      await f.progress({ latest: 17, finalized: 0 }); // the unstake confirmed
      await round();
      // A reorg from block 13: b's stake moves to block 17, c's and a's unstake are gone.
      await f.deleteAbove(12);
      await f.index([{ developer: b, amount: 7n * 10n ** 6n, block: 17, tx: "0x1b" }], 19);
      await round();
      await f.progress({ latest: 20, finalized: 0 });
      await round();
    }
    expect(results.plain).toEqual(results.usual);
    // The plain fake's blocks took one round trip, but for the reorg's, stopped by the server.
    expect(stops).toEqual(["idle", undefined, undefined, undefined, undefined, undefined, "event_gone", undefined]);
    const [one, other] = [await outcome(plain), await outcome(usual)];
    expect(one).toEqual(other);
    expect(one.developers).toMatchObject([
      { wallet: a, status: "active", stake_amount: "5.000000" },
      { wallet: b, status: "active", stake_amount: "7.000000" },
      { wallet: c, status: "inactive", stake_amount: "0.000000" },
    ]);
  });

  it("leaves the welcome job of a wallet without an email pending, for a row of it inserted since the step's snapshot", async () => {
    const f = await fake();
    const w = wallet(0x700b); // a letter to differ in case
    await f.register(w, null);
    await f.round();
    await f.index([{ developer: w, amount: 5n * 10n ** 6n, block: 10 }], 12);
    const twin = w.toUpperCase().replace("0X", "0x");
    const done = await roundPaused(f, async (test) => {
      await test.query("INSERT INTO developers (wallet_address, email) VALUES ($1, 'dev@example.com')", [twin]);
    });
    expect(done.step.kind === "stepped" && done.step.written.map((c) => c.wallet)).toEqual([w]);
    // In the step's snapshot no row of the wallet had an email: decided there, 'no_email' was
    // for good, and the developer never welcomed.
    const { rows } = await f.db.query("SELECT state, skip_reason FROM stakesync.outbox WHERE wallet = $1", [w]);
    expect(rows).toEqual([{ state: "pending", skip_reason: null }]);
  });

  it("bounds a block's write by the developers it takes, not by the step's events: thousands registered get a bulk write's", async () => {
    const f = await fake();
    // 1,100 wallets staked before signing up: their stakes folded, no developers row to write.
    await patternEvents(f, { from: 1, to: 3300, wallets: 1100, base: 0x9000 });
    await f.progress({ latest: 40, safe: 40, finalized: 40 });
    await f.round();
    // They sign up within a minute, and a block of one event comes: a realtime step that writes
    // all 1,100 (registrations), under the bulk bound.
    await f.db.query(
      `INSERT INTO developers (wallet_address, email) SELECT '0x' || lpad(to_hex(${0x9000} + n), 40, '0'), 'd@example.com'
         FROM generate_series(0, 1099) n;
       CREATE TABLE bounds (ms text);
       CREATE FUNCTION note_bound() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO bounds VALUES (current_setting('statement_timeout')); RETURN NULL; END $$;
       CREATE TRIGGER note_bound AFTER UPDATE ON developers FOR EACH STATEMENT EXECUTE FUNCTION note_bound();`,
    );
    await f.index([{ developer: wallet(0x9000), amount: 1n, block: 41 }], 43);
    const round = await f.round();
    expect(round.step.kind === "stepped" && round.step.chains[0]?.added).toBe(1);
    expect(round.step.kind === "stepped" && round.step.written).toHaveLength(1100);
    const { rows } = await f.db.query("SELECT ms FROM bounds");
    // A bound of 1 s would fail a write this size on a busy machine, and run the step twice.
    expect(rows).toEqual([{ ms: "10s" }]);
    // A block's few developers, after: the block's bound.
    await f.db.query("TRUNCATE bounds");
    await f.index([{ developer: wallet(0x9001), amount: 1n, block: 44 }], 46);
    await f.round();
    expect((await f.db.query("SELECT ms FROM bounds")).rows).toEqual([{ ms: "1s" }]);
  });

  it("decides a historic activation in the write, whatever the email: a row with one inserted since the step's snapshot is not welcomed", async () => {
    const jobs = async (f: Fake) => (await f.db.query("SELECT state, skip_reason FROM stakesync.outbox")).rows;
    const activate = async (f: Fake) => {
      await f.register(wallet(0x720b), null); // a letter to differ in case
      await f.round();
      await f.index([{ developer: wallet(0x720b), amount: 5n * 10n ** 6n, block: 10 }], 12);
    };
    // The step's own write: its snapshot has no row with an email; the twin with one comes meanwhile.
    const inStep = await fake({ EFFECTS_FROM_BLOCK: "100" });
    await activate(inStep);
    const done = await roundPaused(inStep, async (test) => {
      await test.query("INSERT INTO developers (wallet_address, email) VALUES ($1, 'dev@example.com')", [
        wallet(0x720b).toUpperCase().replace("0X", "0x"),
      ]);
    });
    // The step's own write, not a fallback to the queue's (whose statement would see the twin).
    expect(fellBackCode(done)).toBeUndefined();
    expect(done.step.kind === "stepped" && done.step.written.map((c) => c.wallet)).toEqual([wallet(0x720b)]);
    await skipWithoutEmail(inStep.db, inStep.config.developersTable.sql);
    // Before the fix: left pending for the sweep ahead of the historic reasons, the job found the
    // twin's email, and was sent.
    expect(await jobs(inStep)).toEqual([{ state: "skipped", skip_reason: "historic" }]);
    // The queue's write says the same of a wallet without an email.
    const queued = await fake({ EFFECTS_FROM_BLOCK: "100" });
    await activate(queued);
    await queued.round({ writeInStep: false });
    expect(await jobs(queued)).toEqual([{ state: "skipped", skip_reason: "historic" }]);
  });

  it.each([
    ["a function it cannot find (42883)", "PERFORM no_such_function()"],
    // Codes and messages the loop's classify takes for Ponder's or the database's: still the write's.
    ["a table it names without its schema (42P01, the code of Ponder's tables gone)", "PERFORM 1 FROM no_such_table"],
    ["a column whose name reads like a lost connection (42703)", "PERFORM closed_at FROM developers LIMIT 1"],
  ])(
    "moves the cursor on past an application trigger's error on %s that fails every developers write: the next tries queue",
    async (_, body) => {
      const f = await fake({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
      const w = wallet(0x7300);
      await f.register(w, "dev@example.com");
      const { changes } = await startLoop(f);
      await waitFor("a committed round", () => loop?.state.lastSyncAt !== null);
      // Every write of a developer fails, on either path.
      await breakDevelopersWrites(f, body);
      await f.index([{ developer: w, amount: 5n * 10n ** 6n, block: 10 }], 12);
      // Taken for the step's error, it held the cursor (the stakes, reorgs) with the write.
      const confirmed = 12 - (f.config.chains[0]?.confirmations ?? 0);
      await waitFor("the cursor at the block", async () => {
        const { rows } = await f.db.query("SELECT block FROM stakesync.cursor");
        return Number(rows[0]?.block) >= confirmed;
      });
      await waitFor("the developers write failing", () => (loop?.state.consecutiveErrors ?? 0) >= 2);
      expect(changes).toEqual([]);
      const { rows } = await f.db.query("SELECT wallet, state FROM stakesync.developer_queue");
      expect(rows).toEqual([{ wallet: w, state: "pending" }]);
    },
  );

  it.each([
    ["a function it cannot find", "no_such_function()"],
    // A message that reads like a lost connection: still the write's, by its SQLSTATE.
    ["a function whose name reads like a lost connection", "closed_connection_check()"],
  ])("corrects a deep reorg and moves at its pace while the developers write keeps failing on %s", async (_, call) => {
    const f = await fake({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "10" });
    const [w, v, u] = [wallet(0x7320), wallet(0x7321), wallet(0x7322)];
    await f.register(w, "dev@example.com");
    await startLoop(f);
    const cursor = async () => Number((await f.db.query("SELECT block FROM stakesync.cursor")).rows[0]?.block);
    // v, with no developers row, stakes at block 20: applied.
    await f.index([{ developer: v, amount: 30n * 10n ** 6n, block: 20, tx: "0xaa" }], 23);
    await waitFor("the cursor past v's stake", async () => (await cursor()) >= 21);
    // The application's table now fails every write of a developer: w's stake queues, and the
    // queue's write fails round after round.
    await breakDevelopersWrites(f, `PERFORM ${call}`);
    await f.index([{ developer: w, amount: 5n * 10n ** 6n, block: 24 }], 27);
    await waitFor("the developers write failing", () => (loop?.state.consecutiveErrors ?? 0) >= 3);
    // A reorg deeper than CONFIRMATIONS takes v's stake back; the new fork goes on.
    await f.db.query(`DELETE FROM ${f.config.ponderSchema}.stake_event WHERE transaction_hash = '0xaa'`);
    // Each failed write cleared what the step had seen missing, and backed the steps off with it:
    // the orphan was never taken back, the chain held. (The new fork's blocks come until it is:
    // one must come after the step that first saw the orphan missing.)
    let block = 27;
    await waitFor(
      "v's stake taken back",
      async () => {
        block += 1;
        await f.index([{ developer: u, amount: 1n, block }], block + 2);
        const { rows } = await f.db.query("SELECT amount FROM stakesync.chain_stake WHERE wallet = $1", [v]);
        return rows.every((r) => BigInt(r.amount) === 0n);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await waitFor("the cursor at the new fork's confirmed block", async () => (await cursor()) >= block);
    const { rows } = await f.db.query("SELECT wallet, state FROM stakesync.developer_queue");
    expect(rows).toEqual([{ wallet: w, state: "pending" }]);
    // Noted for every sidecar's /ready; cleared once the application's table takes the write.
    const noted = async () => (await f.db.query("SELECT last_error FROM stakesync.developers_write_failing")).rows;
    expect(await noted()).toEqual([{ last_error: expect.stringMatching(/does not exist/) }]);
    await f.db.query("DROP TRIGGER broken ON developers");
    await waitFor("the developer written", async () => (await f.developer(w))?.status === "active");
    await waitFor("the note cleared", async () => (await noted()).length === 0);
  });

  it("begins a failure's episode anew after a stale note, but not within a term that failed before", async () => {
    const f = await fake();
    const age = async () =>
      Number(
        (await f.db.query("SELECT extract(epoch from now() - since)::int AS s FROM stakesync.developers_write_failing"))
          .rows[0]?.s,
      );
    const stale = () =>
      f.db.query(
        "UPDATE stakesync.developers_write_failing SET since = now() - interval '300 seconds', failed_at = now() - interval '200 seconds'",
      );
    await noteWriteFailing(f.db, "first", false);
    await stale();
    // Tries stopped for 200 s (Ponder away, steps backing off), this term failing throughout.
    await noteWriteFailing(f.db, "again", true);
    expect(await age()).toBeGreaterThanOrEqual(300);
    // A stale note and a term's first failure: a new episode (a rollback's leftover).
    await stale();
    await noteWriteFailing(f.db, "new term", false);
    expect(await age()).toBeLessThan(10);
  });

  it("clears, in a new term's first round that writes, the failure a dead leader noted", async () => {
    const f = await fake({ SYNC_POLL_MS: "10" });
    await f.db.query(
      "INSERT INTO stakesync.developers_write_failing (since, failed_at, last_error) VALUES (now() - interval '1 hour', now(), 'x')",
    );
    await startLoop(f);
    await waitFor("the note cleared", async () => {
      const { rows } = await f.db.query("SELECT 1 FROM stakesync.developers_write_failing");
      return rows.length === 0;
    });
  });

  it("answers a reconciliation asked for while the developers write backs off with that write's failure", async () => {
    const f = await fake({ SYNC_POLL_MS: "10", RETRY_DELAY_MS: "3000" });
    const w = wallet(0x7330);
    await f.register(w, "dev@example.com");
    await startLoop(f);
    await waitFor("a committed round", () => loop?.state.lastSyncAt !== null);
    await breakDevelopersWrites(f);
    await f.index([{ developer: w, amount: 5n * 10n ** 6n, block: 10 }], 12);
    // The step that carried the write fails first (its next tries queue), then the queue's write.
    await waitFor("the developers write failing", () => (loop?.state.consecutiveErrors ?? 0) >= 2, {
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    // The write now waits 3 s; asked for, the reconciliation's write runs, and its failure is the
    // answer (it was "nothing changed").
    await expect(loop?.requestReconcile()).rejects.toThrow(/no_such_function/);
  });

  it("notes the developers write failing while it waits for an application's migration (a CREATE INDEX's SHARE lock), counting no error, and clears it once the row is written", async () => {
    const f = await fake({ SYNC_POLL_MS: "10" });
    const w = wallet(0x7340);
    await f.register(w, "dev@example.com");
    await startLoop(f);
    await waitFor("a committed round", () => loop?.state.lastSyncAt !== null);
    // The step's ACCESS SHARE goes with SHARE: the step commits, the cursor goes on, and only the
    // write (ROW EXCLUSIVE) waits, in slices.
    const app = await applicationTransaction(f.url, "LOCK TABLE developers IN SHARE MODE");
    try {
      await f.index([{ developer: w, amount: 5n * 10n ** 6n, block: 10 }], 12);
      const confirmed = 12 - (f.config.chains[0]?.confirmations ?? 0);
      await waitFor("the cursor at the block", async () => {
        const { rows } = await f.db.query("SELECT block FROM stakesync.cursor");
        return Number(rows[0]?.block) >= confirmed;
      });
      // Each slice run out was taken for a success: the note cleared, /ready's 120 s never reached.
      await waitFor(
        "the write noted failing",
        async () => (await f.db.query("SELECT 1 FROM stakesync.developers_write_failing")).rowCount === 1,
      );
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const { rows } = await f.db.query<{ last_error: string }>(
        "SELECT last_error FROM stakesync.developers_write_failing",
      );
      expect(rows[0]?.last_error).toMatch(/waits for a lock on the developers table/);
      expect(loop?.state.consecutiveErrors).toBe(0);
      await expect(loop?.requestReconcile()).rejects.toThrow(/waits for a lock on the developers table/);
    } finally {
      await app.end();
    }
    await waitFor("the row written", async () => (await f.developer(w))?.status === "active");
    await waitFor(
      "the note cleared",
      async () => (await f.db.query("SELECT 1 FROM stakesync.developers_write_failing")).rowCount === 0,
    );
  });

  it("keeps a reconciliation asked for while an application's migration holds developers due, and runs it once the table is free, not at the next periodic one", async () => {
    const f = await fake({ SYNC_POLL_MS: "10", RECONCILE_INTERVAL_MS: "3600000" });
    const w = wallet(0x7350);
    await f.register(w, "dev@example.com");
    await f.index([{ developer: w, amount: 6n * 10n ** 6n, block: 10 }], 12);
    await startLoop(f);
    await waitFor("the row written", async () => (await f.developer(w))?.status === "active");
    // The application edits the stake by hand: drift only a reconciliation repairs.
    await f.db.query("UPDATE developers SET stake_amount = 999 WHERE wallet_address = $1", [w]);
    const app = await applicationTransaction(f.url, "LOCK TABLE developers IN ACCESS EXCLUSIVE MODE");
    try {
      await expect(loop?.requestReconcile()).rejects.toThrow(/held by another session's lock/);
    } finally {
      await app.end();
    }
    // Before: dropped with its answer, the drift stood until the periodic reconciliation, an hour on.
    await waitFor("the drift repaired", async () => (await f.developer(w))?.stake_amount === "6.000000", {
      timeoutMs: 20_000,
    });
  });

  it("leaves a row the application holds to the queue, written once it commits", async () => {
    const f = await fake();
    const [held, ...others] = await block(f);
    const { first } = await roundsAroundHold(f, held, "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE");
    expect(first.step.kind === "stepped" && first.step.written.map((c) => c.wallet).sort()).toEqual(others);
    expect(await queued(f)).toEqual([]);
  });
});

/**
 * The outbox's SQL operations against a fresh database: a job is claimed and decided only while
 * the worker's sidecar holds the leader lock, and a worker whose claim was taken over records
 * nothing (the faults issue's duplicate email around a failover); failures back off and end as
 * dead letters an operator can retry; what an SMTP server says of an address is redacted.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import {
  claimNextJob,
  type Fence,
  failJob,
  finishJob,
  listDeadLetters,
  maySend,
  releaseJob,
  retryDeadLetter,
} from "../../sidecar/effects/outbox";
import { LEADER_LOCK, SERVER_START } from "../../sidecar/leader";
import { errorText } from "../../sidecar/redact";
import { type Fake, fakePonder, wallet } from "./ponder-fake";

let fake: Fake;
const leaders: pg.Client[] = [];
afterEach(async () => {
  for (const leader of leaders.splice(0)) await leader.end().catch(() => undefined);
  await fake?.close();
});

/** A sidecar's leader connection: holds the leader lock; its backend pid is the fence. */
async function lead(url: string, workerId: string): Promise<{ client: pg.Client; fence: Fence }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  leaders.push(client);
  const { rows } = await client.query<{ ok: boolean; pid: number }>(
    "SELECT pg_try_advisory_lock($1) AS ok, pg_backend_pid() AS pid",
    [LEADER_LOCK],
  );
  expect(rows[0]?.ok).toBe(true);
  return { client, fence: { workerId, leaderPid: rows[0]?.pid as number } };
}

async function welcomeJob(fake: Fake, w: string) {
  await fake.register(w, "dave@example.test");
  await fake.db.query("INSERT INTO stakesync.outbox (kind, wallet) VALUES ('welcome_email', $1)", [w]);
}

it("lets only the leading sidecar's worker claim and send, and ignores a worker whose claim was taken over", async () => {
  fake = await fakePonder();
  const w = wallet(1);
  await welcomeJob(fake, w);
  const table = fake.config.developersTable.sql;

  // No sidecar leads: nothing is claimed.
  expect(await claimNextJob(fake.db, table, { workerId: "a", leaderPid: 1 }, false)).toBeUndefined();

  const a = await lead(fake.url, "a");
  const job = await claimNextJob(fake.db, table, a.fence, false);
  expect(job).toMatchObject({ wallet: w, attempts: 1, email: "dave@example.test" });
  if (!job) return;
  expect(await maySend(fake.db, job, a.fence)).toBe(true);

  // a's sidecar loses the lead (its connection ends, a frozen one is cut off by the server) and b
  // takes over: a may no longer send, and b claims the job once a's lease has run out.
  await a.client.end();
  const b = await lead(fake.url, "b");
  expect(await maySend(fake.db, job, a.fence)).toBe(false);
  expect(await claimNextJob(fake.db, table, b.fence, true)).toBeUndefined(); // a's lease still runs
  await fake.db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  // Nor before b's worker has had the database TAKE_OVER_AFTER_MS without a break (a may still
  // record a send it made): worker.ts says when (`takeOver`).
  expect(await claimNextJob(fake.db, table, b.fence, false)).toBeUndefined();
  const again = await claimNextJob(fake.db, table, b.fence, true);
  expect(again).toMatchObject({ wallet: w, attempts: 2 });
  if (!again) return;

  // a, stale, can record nothing: not sent, not failed. b's record stands.
  expect(await finishJob(fake.db, job, a.fence, "sent")).toBe(false);
  expect(await failJob(fake.db, job, a.fence, "late", { attempts: 3, delayMs: 10 })).toBeUndefined();
  expect(await finishJob(fake.db, again, b.fence, "sent")).toBe(true);
  const { rows } = await fake.db.query("SELECT state, locked_by, attempts FROM stakesync.outbox");
  expect(rows).toEqual([{ state: "sent", locked_by: "b", attempts: 2 }]);
});

/** A fresh fake with wallet `n`'s welcome job due, and worker "a" leading. */
async function jobDue(n: number) {
  fake = await fakePonder();
  const w = wallet(n);
  await welcomeJob(fake, w);
  return { w, table: fake.config.developersTable.sql, fence: (await lead(fake.url, "a")).fence };
}

it("backs a failing job off, ends it as a dead letter with the SMTP reply redacted, and retries it on request", async () => {
  const { w, table, fence } = await jobDue(2);
  const smtp = Object.assign(new Error("550 5.1.1 <dave@example.test>: Recipient address rejected\nmore"), {
    code: "EENVELOPE",
  });
  const error = errorText(smtp);
  expect(error).toBe("EENVELOPE: 550 5.1.1 <<address>>: Recipient address rejected");
  // A quoted local part may hold spaces: the whole address goes, not just its end.
  expect(errorText(new Error('550 <"dave smith"@example.test> unknown'))).toBe("550 <<address>> unknown");
  // Nor the shapes a stricter pattern stopped at: a domain literal, a comment, an apostrophe, an
  // escaped quote, and one without angle brackets.
  for (const address of [
    "dave@[192.0.2.1]",
    "dave(home)@example.test",
    "o'brien@example.test",
    '"dave\\"x"@example.test',
  ]) {
    expect(errorText(new Error(`550 5.1.1 <${address}>: Recipient address rejected`))).toBe(
      "550 5.1.1 <<address>>: Recipient address rejected",
    );
  }
  expect(errorText(new Error("553 o'brien@example.test: rejected"))).toBe("553 <address> rejected");
  // A long line without an address (a trigger's message, a server's banner) is read once, not
  // once per character: with the pattern before, 20,000 characters took half a second, and time
  // grew by the square of the length (200,000: about 50 s).
  const started = performance.now();
  expect(errorText(new Error("x".repeat(200_000)))).toHaveLength(500);
  expect(errorText(new Error(`"${'\\"'.repeat(100_000)}`))).toHaveLength(500); // escaped quotes
  expect(performance.now() - started).toBeLessThan(5_000);

  const retry = { attempts: 1, delayMs: 60_000 };
  const first = await claimNextJob(fake.db, table, fence, false);
  if (!first) throw new Error("no job claimed");
  expect(await failJob(fake.db, first, fence, error, retry)).toBe("pending");
  expect(await claimNextJob(fake.db, table, fence, false)).toBeUndefined(); // backed off: run_at a minute away
  await fake.db.query("UPDATE stakesync.outbox SET run_at = now()");
  const second = await claimNextJob(fake.db, table, fence, false);
  if (!second) throw new Error("no job claimed");
  expect(await failJob(fake.db, second, fence, error, retry)).toBe("dead");

  const { deadLetters: dead } = await listDeadLetters(fake.db);
  expect(dead).toMatchObject([{ kind: "welcome_email", wallet: w, attempts: 2, lastError: error }]);
  expect(JSON.stringify(dead)).not.toContain("@");
  expect(await retryDeadLetter(fake.db, BigInt(dead[0]?.id ?? 0))).toBe(true);
  expect(await retryDeadLetter(fake.db, 999_999n)).toBe(false);
  expect(await claimNextJob(fake.db, table, fence, false)).toMatchObject({ wallet: w, attempts: 1 });
});

it("counts a job's temporary failures once they have lasted a day, and never kills a job on an uncounted one, whatever count an older version left", async () => {
  const { table, fence } = await jobDue(3);
  const retry = { attempts: 1, delayMs: 10, temporary: true };
  const claim = async () => {
    await fake.db.query("UPDATE stakesync.outbox SET run_at = now()");
    const job = await claimNextJob(fake.db, table, fence, false);
    if (!job) throw new Error("no job claimed");
    return job;
  };
  const row = async () =>
    (await fake.db.query("SELECT state, failures, deferred_since IS NOT NULL AS deferred FROM stakesync.outbox"))
      .rows[0];
  // A recipient's server that answers 452 "over quota": retried, uncounted...
  for (let i = 0; i < 5; i++)
    expect(await failJob(fake.db, await claim(), fence, "452 4.2.2 over quota", retry)).toBe("pending");
  expect(await row()).toEqual({ state: "pending", failures: 0, deferred: true });
  // ...until it has lasted a day: then each counts, and the job ends as a dead letter, not
  // retried every minute for good (StakesyncOutboxGrowing firing, nothing to discard).
  await fake.db.query("UPDATE stakesync.outbox SET deferred_since = now() - interval '25 hours'");
  expect(await failJob(fake.db, await claim(), fence, "452 4.2.2 over quota", retry)).toBe("pending");
  expect(await failJob(fake.db, await claim(), fence, "452 4.2.2 over quota", retry)).toBe("dead");
  expect(await row()).toEqual({ state: "dead", failures: 2, deferred: true });

  // An older version's retry of a dead letter reset `attempts` alone: its `failures` (2) must not
  // make the next temporary failure, nor the next counted one, a dead letter at once.
  await fake.db.query("UPDATE stakesync.outbox SET state = 'pending', attempts = 0, deferred_since = NULL");
  expect(await failJob(fake.db, await claim(), fence, "451 try later", retry)).toBe("pending");
  expect(await failJob(fake.db, await claim(), fence, "550 no", { attempts: 1, delayMs: 10 })).toBe("pending");
  expect(await failJob(fake.db, await claim(), fence, "550 no", { attempts: 1, delayMs: 10 })).toBe("dead");
});

it("makes a dead letter of a job whose claim ran out three times in a row into another worker's with nothing recorded, and retries it afresh", async () => {
  const { w, table, fence } = await jobDue(4);
  const ranOut = () => fake.db.query("UPDATE stakesync.outbox SET locked_until = now() - interval '1 second'");
  const worker = (id: string): Fence => ({ ...fence, workerId: id });
  const lapses = async () => (await fake.db.query("SELECT lapses FROM stakesync.outbox")).rows[0]?.lapses;
  const claim = async (by: Fence) => {
    const job = await claimNextJob(fake.db, table, by, true);
    if (!job) throw new Error("no job claimed");
    return job;
  };
  // A claim given back unsent is no lapse, however many; nor does it start the count again.
  for (let i = 0; i < 4; i++) await releaseJob(fake.db, await claim(worker(`r${i}`)), worker(`r${i}`));
  expect(await lapses()).toBe(0);
  await claim(worker("x"));
  await ranOut();
  await releaseJob(fake.db, await claim(worker("y")), worker("y"));
  expect(await lapses()).toBe(1);
  await fake.db.query("UPDATE stakesync.outbox SET lapses = 0");
  // A worker killed mid-send, and another takes over: two lapses; then a failure recorded ends
  // the run, and two more lapses leave the job pending.
  await claim(worker("a"));
  await ranOut();
  await claim(worker("b"));
  await ranOut();
  const failed = await claim(worker("c"));
  expect(await lapses()).toBe(2);
  await failJob(fake.db, failed, worker("c"), "451 later", { attempts: 3, delayMs: 0, temporary: true });
  expect(await lapses()).toBe(0);
  await fake.db.query("UPDATE stakesync.outbox SET run_at = now()");
  await claim(worker("d"));
  await ranOut();
  // Its own claim run out, taken again by the same worker, sent nothing (a worker that sent keeps
  // the send until recorded, and claims nothing meanwhile): no lapse.
  await claim(worker("d"));
  await ranOut();
  await claim(worker("e"));
  await ranOut();
  expect(await claim(worker("f"))).toMatchObject({ wallet: w, state: "pending", email: "dave@example.test" });
  expect(await lapses()).toBe(2);
  await ranOut();
  // The third in a row: the job is dead, with why, and the take-over claims nothing to send.
  expect(await claimNextJob(fake.db, table, worker("g"), true)).toMatchObject({ wallet: w, state: "dead" });
  expect(await claimNextJob(fake.db, table, worker("g"), true)).toBeUndefined();
  const { deadLetters: dead } = await listDeadLetters(fake.db);
  expect(dead).toMatchObject([{ kind: "welcome_email", wallet: w }]);
  expect(dead[0]?.lastError).toMatch(/ran out 3 times in a row .*possibly sent/);
  // An operator's retry starts the count again.
  expect(await retryDeadLetter(fake.db, BigInt(dead[0]?.id ?? 0))).toBe(true);
  expect(await claim(worker("h"))).toMatchObject({ state: "pending" });
  await ranOut();
  expect(await claim(worker("i"))).toMatchObject({ state: "pending" });
});

it("claims and sends only on the leader's own server: the same pid holding the lock on another server is no fence", async () => {
  const { w, table, fence } = await jobDue(5);
  const { rows } = await fake.db.query<{ server: string }>(`SELECT ${SERVER_START} AS server`);
  const here = rows[0]?.server as string;
  // A leader whose connection still reaches the old primary after a failover, asking over a pool
  // that reaches the new one, where another sidecar's leader connection has its pid.
  const elsewhere = { ...fence, server: "1234567890.123456" };
  expect(await claimNextJob(fake.db, table, elsewhere, false)).toBeUndefined();
  const job = await claimNextJob(fake.db, table, { ...fence, server: here }, false);
  expect(job).toMatchObject({ wallet: w });
  if (!job) return;
  expect(await maySend(fake.db, job, elsewhere)).toBe(false);
  expect(await maySend(fake.db, job, { ...fence, server: here })).toBe(true);
});

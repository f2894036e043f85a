/**
 * A catch-up step taken early while Ponder backfills (windows.ts, `early`) folds its events into
 * the stakes and leaves its developers unwritten (unwritten-developers.ts) for the next step: the
 * same outcome as writing them at once, across a new term and a reorg; never skipped by a round
 * with nothing new; and the sidecar not ready while they wait.
 */
import { afterEach, describe, expect, it } from "vitest";
import { workCounts } from "../../sidecar/effects/outbox";
import {
  applicationTransaction,
  CHAIN,
  type Fake,
  fakePonder,
  patternEvents,
  SCHEMA,
  sidecarParts,
  syncOutcome,
  USDC,
  wallet,
} from "./ponder-fake";

const fakes: Fake[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(env: Record<string, string> = {}): Promise<Fake> {
  const f = await fakePonder({ MIN_STAKE: "5", ...env });
  fakes.push(f);
  return f;
}

const BASE = 0x2000;
const WALLETS = 200;
/** The wallet whose event Ponder drops in the reorg: it has events in the early window only. */
const REORGED = 150;

/** Ponder commits events g = from..to over `wallets` wallets from BASE (patternEvents). */
const events = (f: Fake, from: number, to: number, wallets: number) =>
  patternEvents(f, { from, to, wallets, base: BASE });

/**
 * Most wallets registered an hour ago (not signups a round looks for), some without an email, one
 * (5) activated before (by another system: inactive, with staked_at).
 */
async function register(f: Fake) {
  await f.db.query(
    `INSERT INTO developers (wallet_address, email, updated_at, status, staked_at)
     SELECT '0x' || lpad(to_hex(${BASE} + n), 40, '0'), CASE WHEN n % 7 = 3 THEN NULL ELSE 'd' || n || '@example.com' END,
            now() - interval '1 hour', CASE WHEN n = 5 THEN 'inactive' ELSE 'pending' END,
            CASE WHEN n = 5 THEN timestamptz '2024-01-01' END
       FROM generate_series(0, ${WALLETS - 1}) n WHERE n % 10 <> 9`,
  );
}

/**
 * Ponder backfills 2,000 events (blocks 1–21, final up to 10), and the sidecar, whose head is 25,
 * steps once as a near-end catch-up ("near-end": early) or as a due one ("due": it writes).
 */
async function firstStep(f: Fake, catchUp: "near-end" | "due") {
  await register(f);
  await events(f, 1, 2000, WALLETS);
  await f.progress({ latest: 21, safe: 21, finalized: 10, ready: false });
  return f.round({ catchUp, head: 25 });
}

/** Each wallet's last audit row (ordered by wallet, then id), without the state it replaced. */
function lastRows(audit: Record<string, unknown>[]) {
  const last = new Map(audit.map(({ old_status, old_amount, ...row }) => [row.wallet, row]));
  return [...last.values()];
}

const count = async (f: Fake, sql: string) => Number((await f.db.query<{ n: string }>(sql)).rows[0]?.n);
const unwritten = (f: Fake) => count(f, "SELECT count(*) AS n FROM stakesync.unwritten_developer");

/**
 * A new term's first round, a reconciliation: it takes every row left, and wallet 30 is active
 * from the stake of `block` (its time 1700000000 + 12 · block, patternEvents).
 */
async function reconciledWith30From(f: Fake, block: number) {
  await f.round({ reconcile: true });
  expect(await unwritten(f)).toBe(0);
  expect(await f.developer(wallet(BASE + 30))).toMatchObject({
    status: "active",
    staked_at: new Date((1700000000 + block * 12) * 1000),
  });
}

describe("an early catch-up step", () => {
  it("folds the stakes, leaves the developers to the next step, and ends as writing them at once would", async () => {
    const env = { EFFECTS_FROM_BLOCK: "6" };
    const [early, writing] = await Promise.all([fake(env), fake(env)]);
    const first = await firstStep(early, "near-end");
    // To 18: Ponder's checkpoint block (21) is not trusted while it backfills (trustedBlock), less
    // CONFIRMATIONS.
    expect(first.step).toMatchObject({ kind: "stepped", early: true, chains: [{ to: 18, added: 1799 }] });
    expect(first.changes).toEqual([]);
    // The stakes and the cursor moved; every developer waits, unwritten, with nothing queued.
    expect(await unwritten(early)).toBe(WALLETS);
    // With the activations it found: of every registered wallet past the threshold whose row has
    // no staked_at (not 5's), those the step that writes them would search for.
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.unwritten_developer WHERE activated_at > 0")).toBe(
      WALLETS - WALLETS / 10 - 1,
    );
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.chain_stake")).toBe(WALLETS);
    expect(await count(early, "SELECT count(*) AS n FROM developers WHERE status = 'active'")).toBe(0);
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.audit")).toBe(0);
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.developer_queue")).toBe(0);
    expect((await syncOutcome(early)).cursor).toEqual([{ chain_id: CHAIN, block: "18", final_block: "10" }]);
    const firstWriting = await firstStep(writing, "due");
    expect(firstWriting.step).toMatchObject({ early: false });
    expect(firstWriting.changes.length).toBeGreaterThan(100);

    for (const f of [early, writing]) {
      // A new term (a restart): what the early step left is in the database, not in the process.
      await f.newTerm();
      // Ponder goes on with 2,000 events over half the wallets (blocks 21–41): to 28 at a second
      // early step.
      await events(f, 2001, 4000, 100);
      await f.progress({ latest: 28, safe: 28, finalized: 10, ready: false });
      const second = await f.round({ catchUp: f === early ? "near-end" : "due", head: 29 });
      expect(second.step).toMatchObject({ early: f === early, chains: [{ to: 25 }] });
      // A reorg takes two of the first window's events (blocks 16 and 18, above the final block;
      // one would leave the wallet's stake as it was, with block 20's).
      await f.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE developer = $1 AND block_number IN (16, 18)`, [
        wallet(BASE + REORGED),
      ]);
      // Ready at 42: the step that ends the backfill, a bulk one (it writes its developers itself),
      // once the removal is confirmed.
      const written: number[] = [];
      for (const latest of [42, 43]) {
        await f.progress({ latest, safe: latest, finalized: latest, ready: true });
        const round = await f.round();
        written.push(round.step.kind === "stepped" ? round.step.written.length : 0);
      }
      expect(Math.max(...written)).toBeGreaterThan(50);
    }
    expect(await unwritten(early)).toBe(0);
    const { audit, ...outcome } = await syncOutcome(early);
    const { audit: writingAudit, ...writingOutcome } = await syncOutcome(writing);
    expect(outcome).toEqual(writingOutcome);
    // The audit skips the states the early step never wrote: each developer's last row is the
    // same, with the latest event behind it and 'reorg' for the wallet the reorg changed.
    expect(lastRows(audit)).toEqual(lastRows(writingAudit));
    expect(audit.length).toBeLessThan(writingAudit.length);
    // Not vacuous: activations with their welcome jobs, and the reorged wallet audited as such.
    expect(outcome.outbox.length).toBeGreaterThan(100);
    expect(audit.filter((a) => a.reason === "reorg").map((a) => a.wallet)).toEqual([wallet(BASE + REORGED)]);
    // EFFECTS_FROM_BLOCK 6 against the activations the early steps found: crossings in block 5 are historic.
    expect(outcome.outbox.filter((o) => o.skip_reason === "historic").length).toBeGreaterThan(10);
    expect(outcome.outbox.filter((o) => o.state === "pending").length).toBeGreaterThan(10);
  });

  it("searches an activation again when a reorg took the stake that crossed the threshold", async () => {
    const f = await fake();
    await register(f);
    await events(f, 1, 2000, WALLETS);
    // Final only up to block 2: the crossing stakes (a wallet's third event, blocks 5–6) can be reorged.
    await f.progress({ latest: 21, safe: 21, finalized: 2, ready: false });
    await f.round({ catchUp: "near-end", head: 25 });
    const w = wallet(BASE + 20);
    const crossedAt = async () =>
      (
        await f.db.query<{ b: string }>(
          "SELECT activated_block::text AS b FROM stakesync.unwritten_developer WHERE wallet = $1",
          [w],
        )
      ).rows[0]?.b;
    expect(await crossedAt()).toBe("5"); // 2 + 2 + 2 at g = 420
    // The reorg takes that stake: 2 + 2 − 1 + 2 crosses at the fifth event (g = 820, block 9).
    await f.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE developer = $1 AND block_number = 5`, [w]);
    await f.progress({ latest: 22, safe: 22, finalized: 22, ready: true });
    await f.round();
    await f.progress({ latest: 23, safe: 23, finalized: 23, ready: true });
    await f.round();
    expect(await f.developer(w)).toMatchObject({ status: "active", staked_at: new Date((1700000000 + 9 * 12) * 1000) });
    // Another wallet's, untouched by the reorg, is the one the early step found.
    const other = wallet(BASE + 21);
    expect(await f.developer(other)).toMatchObject({ staked_at: new Date((1700000000 + 5 * 12) * 1000) });
  });

  it("writes a developer with the activation it found, not one searched for again", async () => {
    const f = await fake();
    await firstStep(f, "near-end");
    // What the step that writes them takes: the early step's (here one made up, to tell them apart).
    await f.db.query("UPDATE stakesync.unwritten_developer SET activated_at = 1600000000 WHERE wallet = $1", [
      wallet(BASE + 30),
    ]);
    await f.progress({ latest: 23, safe: 23, finalized: 23, ready: true });
    await f.round();
    expect(await f.developer(wallet(BASE + 30))).toMatchObject({ staked_at: new Date(1600000000 * 1000) });
  });

  it("searches an activation again when the settings it was found under changed (a deploy between the steps)", async () => {
    const f = await fake();
    await firstStep(f, "near-end");
    // Wallet 30 reaches 5 USDC at block 5 (6 staked), and 7 only at block 9 (7, after an unstake).
    await f.newTerm({ MIN_STAKE: "7" });
    await f.progress({ latest: 23, safe: 23, finalized: 23, ready: true });
    await reconciledWith30From(f, 9);
  });

  it("ignores what a sidecar that does not know the table passed over (a rollback below it)", async () => {
    const f = await fake({ MAX_LAG_BLOCKS: "20" });
    const app = sidecarParts(f.config, { head: 30 }).appOn(f.pool());
    await firstStep(f, "near-end");
    await f.db.query("UPDATE stakesync.unwritten_developer SET activated_at = 1600000000 WHERE wallet = $1", [
      wallet(BASE + 30),
    ]);
    // An older sidecar leads: it moves the cursor, and its reconciliation writes every developer.
    await f.db.query("UPDATE stakesync.cursor SET updated_at = now()");
    expect((await app.request("/ready")).status).toBe(200);
    expect(await (await app.request("/status")).json()).toMatchObject({ developers: { unwritten: 0 } });
    // This version leads again: its first round (a reconciliation) drops the rows, searches again.
    await f.newTerm();
    await f.progress({ latest: 21, safe: 21, finalized: 10, ready: true });
    await reconciledWith30From(f, 5);
  });

  it("keeps its developers waiting when the server's clock went back since another cursor moved", async () => {
    const f = await fake();
    // A cursor moved "an hour from now" by the server's clock of then (a chain no longer stepped).
    await f.db.query(
      "INSERT INTO stakesync.cursor (chain_id, block, final_block, updated_at) VALUES (1, 0, 0, now() + interval '1 hour')",
    );
    await firstStep(f, "near-end");
    expect((await workCounts(f.db)).developers.unwritten).toBe(WALLETS);
    await f.progress({ latest: 23, safe: 23, finalized: 23, ready: true });
    await f.round();
    expect(await unwritten(f)).toBe(0);
    expect(await count(f, "SELECT count(*) AS n FROM developers WHERE status = 'active'")).toBeGreaterThan(100);
  });

  it("keeps a developer queued before it out of the developers write until the step that takes it queues it again", async () => {
    const f = await fake();
    const w = wallet(BASE + 1);
    await f.register(w, "w@example.com");
    // 2 USDC (of MIN_STAKE 5) at block 3, queued while an application transaction holds the row.
    await f.index([{ developer: w, amount: 2n * USDC, block: 3 }], 6);
    await f.progress({ latest: 6, ready: false });
    const app = await applicationTransaction(f.url, "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE", [
      w,
    ]);
    await f.round({ catchUp: "due", head: 13 });
    await app.query("ROLLBACK");
    await app.end();
    expect((await syncOutcome(f)).queue).toEqual([{ wallet: w, state: "pending", reason: "stake" }]);
    // 4 more at block 8, taken by an early step: the row is free, but its entry is the 2 USDC one.
    await f.index([{ developer: w, amount: 4n * USDC, block: 8 }], 12);
    await f.progress({ latest: 12, ready: false });
    const early = await f.round({ catchUp: "near-end", head: 13 });
    expect(early.step).toMatchObject({ early: true });
    expect(early.changes).toEqual([]);
    expect(await f.developer(w)).toMatchObject({ status: "pending", stake_amount: "0", staked_at: null });
    // Backfill over: queued again with the activation, and written whole.
    await f.progress({ latest: 12, ready: true });
    await f.round();
    expect(await f.developer(w)).toMatchObject({
      status: "active",
      stake_amount: "6.000000",
      staked_at: new Date((1700000000 + 8 * 12) * 1000),
    });
    expect((await syncOutcome(f)).outbox).toEqual([
      { kind: "welcome_email", wallet: w, state: "pending", skip_reason: null },
    ]);
  });

  it("is written by the next round even when that round has nothing new", async () => {
    const f = await fake();
    await firstStep(f, "near-end");
    // Ponder ready at the block it had: no new confirmed or final block, the round's two
    // questions; the developers the early step left are a third.
    await f.progress({ latest: 21, safe: 21, finalized: 10, ready: true });
    const next = await f.round();
    expect(next.changes.length).toBeGreaterThan(100);
    expect(await unwritten(f)).toBe(0);
    expect(await count(f, "SELECT count(*) AS n FROM developers WHERE status = 'active'")).toBeGreaterThan(100);
  });

  it("keeps the sidecar from being ready while its developers wait", async () => {
    const f = await fake({ MAX_LAG_BLOCKS: "20" });
    const app = sidecarParts(f.config, { head: 30 }).appOn(f.pool());
    await firstStep(f, "near-end");
    // 11 blocks behind the head, within MAX_LAG_BLOCKS: only the developers keep it from ready.
    const waiting = await app.request("/ready");
    expect(waiting.status).toBe(503);
    expect(await waiting.json()).toEqual({
      ready: false,
      reason: `${WALLETS} developers wait for the step that ends Ponder's backfill`,
    });
    expect(await (await app.request("/status")).json()).toMatchObject({ developers: { unwritten: WALLETS } });
    await f.progress({ latest: 28, safe: 28, finalized: 28, ready: true });
    await f.round();
    expect((await app.request("/ready")).status).toBe(200);
  });
});

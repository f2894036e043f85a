/**
 * A catch-up step taken early while Ponder backfills (windows.ts, `early`) folds its events into
 * the stakes and leaves its developers unwritten (unwritten-developers.ts) for the next step: the
 * same outcome as writing them at once, across a new term and a reorg; never skipped by a round
 * with nothing new; and the sidecar not ready while they wait.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CHAIN, type Fake, fakePonder, SCHEMA, sidecarParts, syncOutcome } from "./ponder-fake";

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

/**
 * Ponder commits events g = from..to over `wallets` wallets (wallet(BASE + g % wallets)), 100 a
 * block from block 1: stakes of 2 USDC, and for every fifth k = g / wallets from the fourth on,
 * unstakes of 1. A running sum of 2, 4, 6: first activations at a wallet's third event.
 */
async function events(f: Fake, from: number, to: number, wallets: number) {
  await f.db.query(
    `INSERT INTO ${SCHEMA}.stake_event
     SELECT lpad((1700000000 + b * 12)::text, 10, '0') || lpad('${CHAIN}', 16, '0') || lpad(b::text, 16, '0')
              || lpad(g::text, 16, '0') || '5' || lpad('0', 16, '0'),
            ${CHAIN}, '0x' || lpad(to_hex(${BASE} + g % ${wallets}), 40, '0'),
            CASE WHEN (g / ${wallets}) % 5 = 3 THEN 'unstaked' ELSE 'staked' END,
            CASE WHEN (g / ${wallets}) % 5 = 3 THEN 1000000 ELSE 2000000 END,
            b, 1700000000 + b * 12, '0x' || lpad(to_hex(g), 64, '0'), 0
       FROM generate_series(${from}, ${to}) g, LATERAL (SELECT 1 + g / 100 AS b) x`,
  );
}

/**
 * Most wallets registered an hour ago (not signups a round looks for), some without an email.
 */
async function register(f: Fake) {
  await f.db.query(
    `INSERT INTO developers (wallet_address, email, updated_at)
     SELECT '0x' || lpad(to_hex(${BASE} + n), 40, '0'), CASE WHEN n % 7 = 3 THEN NULL ELSE 'd' || n || '@example.com' END,
            now() - interval '1 hour'
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

describe("an early catch-up step", () => {
  it("folds the stakes, leaves the developers to the next step, and ends as writing them at once would", async () => {
    const [early, writing] = await Promise.all([fake(), fake()]);
    const first = await firstStep(early, "near-end");
    expect(first.step).toMatchObject({ kind: "stepped", early: true, chains: [{ to: 19, added: 1899 }] });
    expect(first.changes).toEqual([]);
    // The stakes and the cursor moved; every developer waits, unwritten, with nothing queued.
    expect(await unwritten(early)).toBe(WALLETS);
    // With the activations it found: every wallet past the threshold, registered or not.
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.unwritten_developer WHERE activated_at > 0")).toBe(
      WALLETS,
    );
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.chain_stake")).toBe(WALLETS);
    expect(await count(early, "SELECT count(*) AS n FROM developers WHERE status <> 'pending'")).toBe(0);
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.audit")).toBe(0);
    expect(await count(early, "SELECT count(*) AS n FROM stakesync.developer_queue")).toBe(0);
    expect((await syncOutcome(early)).cursor).toEqual([{ chain_id: CHAIN, block: "19", final_block: "10" }]);
    const firstWriting = await firstStep(writing, "due");
    expect(firstWriting.step).toMatchObject({ early: false });
    expect(firstWriting.changes.length).toBeGreaterThan(100);

    for (const f of [early, writing]) {
      // A new term (a restart): what the early step left is in the database, not in the process.
      await f.newTerm();
      // A reorg took two of the early window's events (blocks 16 and 18, above the final block;
      // one would leave the wallet's stake as it was, with the new block 20's), and Ponder went on
      // to block 28 and became ready.
      await f.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE developer = $1 AND block_number IN (16, 18)`, [
        `0x${(BASE + REORGED).toString(16).padStart(40, "0")}`,
      ]);
      await events(f, 2001, 2600, 100);
      await f.progress({ latest: 28, safe: 28, finalized: 28, ready: true });
      await f.round();
      await f.progress({ latest: 29, safe: 29, finalized: 29, ready: true });
      await f.round();
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
    expect(audit.filter((a) => a.reason === "reorg").map((a) => a.wallet)).toEqual([
      `0x${(BASE + REORGED).toString(16).padStart(40, "0")}`,
    ]);
  });

  it("searches an activation again when a reorg took the stake that crossed the threshold", async () => {
    const f = await fake();
    await register(f);
    await events(f, 1, 2000, WALLETS);
    // Final only up to block 2: the crossing stakes (a wallet's third event, blocks 5–6) can be reorged.
    await f.progress({ latest: 21, safe: 21, finalized: 2, ready: false });
    await f.round({ catchUp: "near-end", head: 25 });
    const w = `0x${(BASE + 20).toString(16).padStart(40, "0")}`;
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
    const other = `0x${(BASE + 21).toString(16).padStart(40, "0")}`;
    expect(await f.developer(other)).toMatchObject({ staked_at: new Date((1700000000 + 5 * 12) * 1000) });
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

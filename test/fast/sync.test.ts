/**
 * The sync's operations against fabricated Ponder tables: confirmations, activation, reorgs,
 * a restarted Ponder, an application holding or refusing rows. Milliseconds each.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { countDiffering, planDevelopers } from "../../sidecar/sync/plan-developers";
import { type Fake, fakePonder, SCHEMA, wallet } from "./ponder-fake";

const USDC = 1_000_000n;
let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

/**
 * `count` staked events of 1 USDC Ponder committed long ago: event g in block 1 + g / perBlock, by
 * wallet number walletBase + g % wallets (ids sort before any event of `fake.index`).
 */
async function pastEvents(on: Fake, count: number, { wallets = 20_000, perBlock = 200, walletBase = 65_536 } = {}) {
  await on.db.query(
    `INSERT INTO ${SCHEMA}.stake_event
     SELECT lpad(g::text, 75, '0'), 31337, '0x' || lpad(to_hex($2::int + g % $3::int), 40, '0'), 'staked', 1000000,
            1 + g / $4::int, 1700000000 + g, '0x' || lpad(to_hex(g), 64, '0'), 0
       FROM generate_series(1, $1::int) g`,
    [count, walletBase, wallets, perBlock],
  );
}

/** The queries `fake` sends while `work` runs (several statements may go in one), with its result. */
async function sending<T>(on: Fake, work: () => Promise<T>): Promise<{ sent: string[]; result: T }> {
  const sent: string[] = [];
  const query = on.db.query.bind(on.db);
  on.db.query = ((...args: Parameters<typeof query>) => {
    sent.push(String(typeof args[0] === "string" ? args[0] : (args[0] as { text?: string }).text));
    return query(...args);
  }) as typeof query;
  try {
    return { sent, result: await work() };
  } finally {
    on.db.query = query;
  }
}

describe("confirmed stakes", () => {
  it("applies an event once it has CONFIRMATIONS blocks on top, with staked_at from the crossing stake", async () => {
    fake = await fakePonder({ MIN_STAKE: "10" });
    const w = wallet(1);
    await fake.register(w);
    await fake.index([
      { developer: w, amount: 4n * USDC, block: 10 },
      { developer: w, amount: 7n * USDC, block: 11 },
    ]);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending", stake_amount: "0" }); // head 11, confirmed 9
    await fake.progress({ latest: 12, safe: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending", stake_amount: "4.000000" });
    await fake.progress({ latest: 13, safe: 0 });
    await fake.round();
    const row = await fake.developer(w);
    expect(row).toMatchObject({ status: "active", stake_amount: "11.000000" });
    expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 11 * 12) * 1000); // the second stake crossed 10
    expect(await fake.audit(w)).toEqual(["stake pending 4.000000", "stake active 11.000000"]);
  });

  it("keeps two rows of one wallet (differing in letter case) in step, without failing the step", async () => {
    fake = await fakePonder();
    const w = wallet(0xabcdef);
    await fake.register(w);
    await fake.register(w.toUpperCase().replace("0X", "0x"));
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    const { rows } = await fake.db.query("SELECT status, stake_amount::text FROM developers ORDER BY id");
    expect(rows).toEqual([
      { status: "active", stake_amount: "5.000000" },
      { status: "active", stake_amount: "5.000000" },
    ]);
  });
});

describe("a developer who registers after staking", () => {
  it("is active at the next step, audited as registered, without a reconciliation", async () => {
    fake = await fakePonder({ RECONCILE_INTERVAL_MS: "3600000" });
    const w = wallet(30);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    expect(await fake.developer(w)).toBeUndefined();
    await fake.register(w, "late@example.test");
    await fake.round(); // between blocks: no new block from Ponder
    expect(await fake.developer(w)).toMatchObject({ status: "active" });
    // And in a round with a new block.
    const other = wallet(31);
    await fake.index([{ developer: other, amount: 5n * USDC, block: 13 }], 15);
    await fake.round();
    await fake.register(other, "later@example.test");
    await fake.progress({ latest: 16, safe: 0 });
    await fake.round();
    expect(await fake.developer(other)).toMatchObject({ status: "active" });
    const row = await fake.developer(w);
    expect(row).toMatchObject({ status: "active", stake_amount: "5.000000" });
    expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 10 * 12) * 1000);
    expect(await fake.audit(w)).toEqual(["registered active 5.000000"]);
  });
});

describe("a Ponder restart (crash recovery) is not a reorg", () => {
  it("leaves developers alone while Ponder's rows are gone under an unchanged checkpoint, and after", async () => {
    fake = await fakePonder();
    const w = wallet(3);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 100n * USDC, block: 20 }], 25);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active" });

    // Crash recovery: rows above safe_checkpoint (5) deleted, is_ready 0, checkpoint untouched.
    await fake.deleteAbove(5);
    await fake.progress({ latest: 25, safe: 5, ready: false });
    for (let i = 0; i < 5; i++) await fake.round();
    // Its first batch lowers the checkpoint; re-indexing climbs back; ready again.
    await fake.progress({ latest: 10, safe: 10, ready: false });
    await fake.round();
    await fake.index([{ developer: w, amount: 100n * USDC, block: 20 }], 26);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "100.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 100.000000"]);
  });
});

describe("a developer who registers while Ponder recovers", () => {
  it("is not activated without the stake that activated them: pending until Ponder shows it, then with staked_at", async () => {
    fake = await fakePonder();
    const w = wallet(6);
    await fake.index([{ developer: w, amount: 20n * USDC, block: 20 }], 25);
    await fake.round(); // applied; no developers row yet
    // A restart's crash recovery: the stake's row is gone for now. The developer signs up, and a
    // reconciliation is due (a new leader runs one at once).
    await fake.deleteAbove(5);
    await fake.progress({ latest: 25, safe: 5, ready: false });
    await fake.register(w);
    await fake.round({ reconcile: true });
    expect(await fake.developer(w)).toMatchObject({ status: "pending", staked_at: null });
    // Ponder has re-indexed: the registration is found again, with the stake that crossed.
    await fake.index([{ developer: w, amount: 20n * USDC, block: 20 }], 26);
    await fake.round();
    const row = await fake.developer(w);
    expect(row).toMatchObject({ status: "active", stake_amount: "20.000000" });
    expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 20 * 12) * 1000);
  });
});

describe("a second Ponder instance (PONDER_REPLICA_SCHEMAS)", () => {
  const REPLICA = "ponder_replica";

  it("is read while the first recovers from a restart, and the first again once the second stops", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const [a, b] = [wallet(30), wallet(31)];
    await fake.register(a);
    await fake.register(b);
    const first = [{ developer: a, amount: 100n * USDC, block: 20 }];
    await fake.index(first, 25);
    await replica.index(first, 25);
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);

    // The first restarts (crash recovery: rows gone, is_ready 0); the second goes on and sees b stake.
    await fake.deleteAbove(5);
    await fake.progress({ latest: 25, safe: 5, ready: false });
    await replica.index([{ developer: b, amount: 5n * USDC, block: 26 }], 30);
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect(await fake.developer(a)).toMatchObject({ status: "active", stake_amount: "100.000000" });
    expect(await fake.developer(b)).toMatchObject({ status: "active", stake_amount: "5.000000" });

    // The first is back and level: the step stays where it is. The second stops: the first again.
    await fake.index([...first, { developer: b, amount: 5n * USDC, block: 26 }], 31);
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    await fake.index([{ developer: a, amount: 1n * USDC, block: 32 }], 35);
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    expect(await fake.developer(a)).toMatchObject({ status: "active", stake_amount: "101.000000" });
    expect(await fake.audit(a)).toEqual(["stake active 100.000000", "stake active 101.000000"]);
    expect(await fake.audit(b)).toEqual(["stake active 5.000000"]);
  });

  it("is read while the first is frozen inside a transaction that locks its tables, and the first is not waited for", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const w = wallet(33);
    await fake.register(w);
    const stake = [{ developer: w, amount: 8n * USDC, block: 20 }];
    await fake.index(stake, 23);
    await replica.index(stake, 23);
    await fake.round();
    // The first stops inside its reorg transaction, holding its tables (Ponder lets it idle for an hour).
    const frozen = new pg.Client({ connectionString: fake.url });
    await frozen.connect();
    try {
      await frozen.query(
        `BEGIN; LOCK TABLE ${SCHEMA}.stake_event, ${SCHEMA}._ponder_checkpoint IN ACCESS EXCLUSIVE MODE`,
      );
      await replica.index([{ developer: w, amount: 2n * USDC, block: 24 }], 27);
      await fake.round();
      expect(fake.source()).toBe(REPLICA);
      expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "10.000000" });
    } finally {
      await frozen.end();
    }
  }, 60_000); // broken, the round would wait for the frozen one's locks: fail in a minute, not three

  it("sees a removal afresh after a switch: one instance's checkpoint confirms nothing of another's", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const w = wallet(32);
    await fake.register(w);
    const stake = [{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }];
    await fake.index(stake, 23);
    await replica.index(stake, 23);
    await fake.round();
    // The first in a reorg's first half (rows gone, checkpoint 23): noted, deferred.
    await fake.deleteAbove(19);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    // The second, two blocks on, in a reorg's first half of its own, under checkpoint 25.
    await replica.progress({ latest: 25, safe: 0, finalized: 0 });
    await replica.deleteAbove(19);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    expect(fake.source()).toBe(REPLICA);
    // Its next block brings the transaction back: nothing was a reorg for developers.
    await replica.index(stake, 26);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
  });

  it("stays with the one that follows a deep reorg first, though its checkpoint came down, and takes the orphan back on its next block", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const w = wallet(33);
    await fake.register(w);
    const stake = [{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }];
    await fake.index(stake, 30);
    await replica.index(stake, 30);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });

    // The first instance follows a reorg from block 19: rows, then checkpoint, down. The second
    // still shows the old fork, and goes on with it for a block: not ahead of where the first was.
    await fake.deleteAbove(19);
    await fake.round();
    await fake.progress({ latest: 19, finalized: 0 });
    await replica.progress({ latest: 31, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    // The new fork's blocks 20 and 21, without the stake: taken back, by the instance it followed.
    await fake.index([], 20);
    await fake.round();
    await fake.progress({ latest: 21, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);

    // Stalled since (its provider down), it is left once the other is two blocks past its peak (30).
    await replica.progress({ latest: 32, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
  });

  it("leaves the one stalled at its head inside a deep reorg once the other has committed two blocks of the new fork, and takes the orphan back", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const w = wallet(34);
    await fake.register(w);
    const stake = [{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }];
    await fake.index(stake, 30);
    await replica.index(stake, 30);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });

    // The second follows a reorg from block 19: rows, then checkpoint, down. The first stays at
    // 30 on the old fork, committing nothing (Ponder retrying a vanished block's logs).
    await replica.deleteAbove(19);
    await fake.round();
    await replica.progress({ latest: 19, safe: 0, finalized: 0 });
    await fake.round();
    await replica.index([], 20);
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    // Its second block of the new fork, still ten below the first's peak: read from here, the
    // orphan seen missing under this checkpoint, and taken back under the next.
    await replica.progress({ latest: 21, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    await replica.progress({ latest: 22, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);

    // A new leader starts at the first instance, still on the old fork with the orphan: it reads
    // the second, from what the last term left in the database, and adds nothing back.
    await fake.newTerm();
    await replica.progress({ latest: 23, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    // The first follows the reorg at last: readable again, and below the second, not read.
    await fake.deleteAbove(19);
    await fake.progress({ latest: 19, finalized: 0 });
    await fake.round();
    await fake.index([], 20);
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect((await fake.db.query("SELECT count(*)::int AS n FROM stakesync.left_source")).rows[0].n).toBe(0);
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
  });

  it("measures an instance it switched to from that instance's own peak, not the one it left", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    await fake.progress({ latest: 30 });
    await replica.progress({ latest: 27 });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    // The first restarts: the second, three blocks behind, is read, and then stops there.
    await fake.progress({ latest: 30, ready: false });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    // The first is back, three blocks ahead of all the second has shown: read again.
    await fake.progress({ latest: 30 });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
  });
});

describe("a reorg deeper than CONFIRMATIONS", () => {
  it("is applied only once Ponder has committed a later checkpoint, then in one correction", async () => {
    fake = await fakePonder();
    const w = wallet(4);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }], 23);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });

    // Ponder's reorg transaction: the orphan is gone, the checkpoint not yet moved.
    await fake.deleteAbove(19);
    const deferred = await fake.round();
    expect(deferred.step).toMatchObject({ kind: "stepped", chains: [], deferred: [31337] });
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    // The next block's transaction: the new fork's stake (same position, another transaction).
    await fake.index([{ developer: w, amount: 12n * USDC, block: 20, tx: "0xbb" }], 24);
    const corrected = await fake.round();
    expect(corrected.step).toMatchObject({ kind: "stepped", deferred: [] });
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "12.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg active 12.000000"]);
    expect(corrected.changes.map((c) => c.reason)).toEqual(["reorg"]);
  });

  it("is taken back once Ponder commits the new fork above the orphan, before that fork passes the cursor", async () => {
    fake = await fakePonder();
    const [w, other] = [wallet(6), wallet(7)];
    await fake.register(w);
    await fake.register(other);
    await fake.index(
      [
        { developer: other, amount: 5n * USDC, block: 10, tx: "0x10" },
        { developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" },
      ],
      30,
    );
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
    const cursor = async () => (await fake.db.query("SELECT block::int FROM stakesync.cursor")).rows[0]?.block;
    expect(await cursor()).toBe(28);

    // A reorg from block 19 on, ten blocks deep: the rows go first, then the checkpoint comes down.
    await fake.deleteAbove(19);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    await fake.progress({ latest: 19, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    // The new fork's block 20, without w's stake, with another's; then its block 21.
    await fake.index([{ developer: other, amount: 12n * USDC, block: 20, tx: "0xbb" }], 20);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    await fake.progress({ latest: 21, finalized: 0 });
    const corrected = await fake.round();
    expect(corrected.changes.map((c) => [c.wallet, c.reason])).toEqual([[w, "reorg"]]);
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    // The new fork's stake is not confirmed yet (block 20 of a head at 21), and the cursor stays.
    expect(await fake.developer(other)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    expect(await cursor()).toBe(28);

    // Once the new fork's stake is CONFIRMATIONS deep it is added, the cursor still where it was.
    await fake.progress({ latest: 22, finalized: 0 });
    await fake.round();
    expect(await fake.developer(other)).toMatchObject({ status: "active", stake_amount: "17.000000" });
    expect(await cursor()).toBe(28);
    await fake.progress({ latest: 31, finalized: 0 });
    await fake.round();
    expect(await fake.developer(other)).toMatchObject({ status: "active", stake_amount: "17.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
    expect(await fake.audit(other)).toEqual(["stake active 5.000000", "reorg active 17.000000"]);
    expect(await cursor()).toBe(29);
  });

  it("never shows a sum of both forks: the new fork's stake waits while the old one's is first missed", async () => {
    fake = await fakePonder();
    const w = wallet(12);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }], 30);
    await fake.round();
    // The first state a step sees after the reorg: Ponder already five blocks into the new fork,
    // whose block 20 has w's smaller stake, confirmed (target 23) but below the cursor (28).
    await fake.deleteAbove(19);
    await fake.index([{ developer: w, amount: 12n * USDC, block: 20, tx: "0xbb" }], 25);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    await fake.progress({ latest: 26, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "12.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg active 12.000000"]);
  });

  it("takes each orphan back one block of the new fork after it was first missed, not all once the fork reaches the cursor", async () => {
    fake = await fakePonder();
    const wallets = [20, 21, 22, 23].map((block) => wallet(block));
    for (const w of wallets) await fake.register(w);
    await fake.index(
      wallets.map((w, i) => ({ developer: w, amount: 30n * USDC, block: 20 + i, tx: `0x${20 + i}` })),
      30,
    );
    await fake.round();
    await fake.deleteAbove(19);
    await fake.round();
    await fake.progress({ latest: 19, finalized: 0 });
    await fake.round();
    const statuses = async () => Promise.all(wallets.map(async (w) => (await fake.developer(w))?.status));
    const seen: string[][] = [];
    for (const block of [20, 21, 22, 23, 24]) {
      await fake.progress({ latest: block, finalized: 0 }); // the new fork's blocks, without these stakes
      await fake.round();
      seen.push((await statuses()).map((s) => s?.slice(0, 1) ?? "?"));
    }
    // a = active, i = inactive: the orphan of block b goes once Ponder has committed block b + 1.
    expect(seen.map((s) => s.join(""))).toEqual(["aaaa", "iaaa", "iiaa", "iiia", "iiii"]);
    expect(await fake.db.query("SELECT block::int FROM stakesync.cursor")).toMatchObject({ rows: [{ block: 28 }] });
  });

  it("never counts a transaction twice when the new fork mines it again lower, above Ponder's checkpoint", async () => {
    fake = await fakePonder({ CONFIRMATIONS: "3" });
    const w = wallet(13);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 60n * USDC, block: 27, log: 0, tx: "0xaa" }], 31);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "60.000000" });
    // A reorg from 19: the same transaction mined again at block 21 (another event id), Ponder at 25.
    await fake.deleteAbove(19);
    await fake.index([{ developer: w, amount: 60n * USDC, block: 21, log: 0, tx: "0xaa" }], 25);
    const amounts: string[] = [];
    for (const latest of [25, 26, 27, 28, 29, 30, 31, 32]) {
      await fake.progress({ latest, finalized: 0 });
      await fake.round();
      amounts.push((await fake.developer(w))?.stake_amount ?? "?");
    }
    expect(new Set(amounts)).toEqual(new Set(["60.000000"]));
    expect(await fake.db.query("SELECT block_number::int FROM stakesync.applied_event")).toMatchObject({
      rows: [{ block_number: 21 }],
    });
  });

  it("is not seen in a provider lagging the head: Ponder lowers its checkpoint, then indexes the same blocks again", async () => {
    fake = await fakePonder();
    const w = wallet(8);
    await fake.register(w);
    const stake = { developer: w, amount: 30n * USDC, block: 25, tx: "0xaa" };
    await fake.index([stake], 30);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });

    // Ponder takes the provider's head, 22, for a reorg: the rows above it go, then the checkpoint.
    await fake.deleteAbove(22);
    await fake.round();
    for (let block = 22; block <= 31; block++) {
      if (block === 25) await fake.index([stake], 25);
      else await fake.progress({ latest: block, finalized: 0 });
      await fake.round();
      await fake.round({ reconcile: true }); // a reconciliation compares nothing above Ponder's checkpoint
      expect(await fake.developer(w), `at block ${block}`).toMatchObject({
        status: "active",
        stake_amount: "30.000000",
      });
    }
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
  });

  it("is not confirmed for one event by the earlier sighting of another (a provider lagging twice, a state unseen)", async () => {
    fake = await fakePonder();
    const [w, o] = [wallet(9), wallet(10)];
    await fake.register(w);
    await fake.register(o);
    const stakes = [
      { developer: w, amount: 30n * USDC, block: 24, tx: "0x24" },
      { developer: o, amount: 30n * USDC, block: 27, tx: "0x27" },
    ];
    await fake.index(stakes, 30);
    await fake.round();
    // The provider lags to 25: Ponder deletes the rows above it; a step sees o's stake missing.
    await fake.deleteAbove(25);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    // Unseen by any step: Ponder lowers its checkpoint and commits block 26; the provider lags
    // again, to 22, and Ponder deletes the rows above that, under checkpoint 26.
    await fake.progress({ latest: 26, finalized: 0 });
    await fake.deleteAbove(22);
    expect((await fake.round()).step).toMatchObject({ deferred: [31337] });
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
    // Ponder takes the provider's head and indexes the same blocks again: nothing was a reorg.
    await fake.progress({ latest: 22, finalized: 0 });
    await fake.round();
    await fake.index(stakes, 31);
    await fake.round();
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
    expect(await fake.audit(o)).toEqual(["stake active 30.000000"]);
  });

  it("activates a developer whose unstake it took back, with the stake at or below the cursor", async () => {
    fake = await fakePonder({ MIN_STAKE: "10" });
    const w = wallet(11);
    await fake.index(
      [
        { developer: w, amount: 15n * USDC, block: 22, tx: "0x22" },
        { developer: w, kind: "unstaked", amount: 15n * USDC, block: 23, tx: "0x23" },
      ],
      30,
    );
    await fake.round();
    await fake.register(w);
    await fake.round({ reconcile: true });
    expect(await fake.developer(w)).toMatchObject({ status: "pending" });
    // A reorg from block 22 on orphans the unstake; then Ponder commits the new fork's block 23,
    // whose confirmed block (21) is below the stake: it is looked up up to where rows were compared.
    await fake.deleteAbove(22);
    await fake.round();
    await fake.progress({ latest: 23, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "15.000000" });
    expect((await fake.developer(w))?.staked_at?.getTime()).toBe((1_700_000_000 + 22 * 12) * 1000);
  });

  it("is diffed even when Ponder finalized past it while no step ran", async () => {
    fake = await fakePonder();
    const w = wallet(5);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 30n * USDC, block: 12, tx: "0xaa" }], 15);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active" });
    // Meanwhile, with no sidecar: the stake orphaned, and Ponder finalized to block 40.
    await fake.deleteAbove(11);
    await fake.index([{ developer: wallet(99), amount: 1n, block: 41 }], 70);
    await fake.progress({ latest: 70, safe: 40, finalized: 40 });
    await fake.round(); // first sighting
    await fake.progress({ latest: 71, safe: 40, finalized: 40 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
  });
});

describe("the application's own transactions on developers", () => {
  it("holds back only the row it holds; that row is written once it commits, its columns kept", async () => {
    fake = await fakePonder();
    const [held, other] = [wallet(6), wallet(7)];
    await fake.register(held);
    await fake.register(other);
    await fake.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const app = new pg.Client({ connectionString: fake.url });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("UPDATE developers SET last_seen = now() WHERE wallet_address = $1", [held]);
      await fake.index(
        [
          { developer: held, amount: 5n * USDC, block: 10 },
          { developer: other, amount: 5n * USDC, block: 10, log: 1 },
        ],
        12,
      );
      const first = await fake.round();
      expect(first.changes.map((c) => c.wallet)).toEqual([other]);
      expect(first.held).toBe(1);
      expect(await fake.developer(held)).toMatchObject({ status: "pending" });
      await app.query("COMMIT");
    } finally {
      await app.end();
    }
    const second = await fake.round();
    expect(second.changes.map((c) => c.wallet)).toEqual([held]);
    const { rows } = await fake.db.query(
      "SELECT status, last_seen IS NOT NULL AS seen FROM developers WHERE wallet_address = $1",
      [held],
    );
    expect(rows[0]).toEqual({ status: "active", seen: true });
  });

  it("sets aside a row the database refuses, writes every other, and stops on a rule that refuses all", async () => {
    fake = await fakePonder();
    const ws = [wallet(8), wallet(9), wallet(10), wallet(11)];
    for (const w of ws) await fake.register(w);
    await fake.db.query(`
      CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.wallet_address = '${ws[2]}' OR current_setting('app.refuse_all', true) = 'on' THEN
          RAISE EXCEPTION 'refused: ask ops@example.test';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION refuse();`);
    await fake.index(
      ws.map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    const result = await fake.round();
    expect(result.refused.map((r) => r.wallet)).toEqual([ws[2]]);
    expect(result.refused[0]?.error).toBe("P0001: refused: ask <address>");
    expect(result.changes.map((c) => c.wallet).sort()).toEqual([ws[0], ws[1], ws[3]].sort());
    const { rows } = await fake.db.query("SELECT wallet, state FROM stakesync.developer_queue");
    expect(rows).toEqual([{ wallet: ws[2], state: "dead" }]);

    // A rule that refuses every row is the table's problem: an error, not a dead letter each.
    await fake.db.query(`ALTER DATABASE ${fake.url.split("/").pop()} SET app.refuse_all = 'on'`);
    const refuseAll = new pg.Client({ connectionString: fake.url });
    await refuseAll.connect();
    try {
      await fake.db.query("UPDATE stakesync.developer_queue SET state = 'pending'");
      await fake.db.query(
        `INSERT INTO stakesync.developer_queue (wallet, reason) VALUES ($1, 'stake'), ($2, 'stake')`,
        [ws[0], ws[1]],
      );
      await fake.db.query("UPDATE stakesync.chain_stake SET amount = amount + 1");
      const { applyDevelopers } = await import("../../sidecar/sync/apply-developers");
      await expect(applyDevelopers(refuseAll, fake.config)).rejects.toThrow(/refused every developers row/);
    } finally {
      await refuseAll.end();
    }
  });
});

describe("Ponder's tables", () => {
  it("are waited for, not an error, while they do not exist", async () => {
    fake = await fakePonder();
    await fake.db.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
    const result = await fake.round();
    expect(result.step).toEqual({ kind: "waiting-for-ponder" });
  });

  it("are waited for again when they go after a step found them (a `ponder dev` restart drops them)", async () => {
    fake = await fakePonder();
    await fake.index([{ developer: wallet(0x48), amount: 5n * USDC, block: 10 }], 12);
    await fake.round(); // found: the next step reads Ponder's progress with its BEGIN
    await fake.db.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
    expect((await fake.round()).step).toEqual({ kind: "waiting-for-ponder" });
    expect((await fake.round()).step).toEqual({ kind: "waiting-for-ponder" });
  });

  it("are an error, not waited for, when one goes missing from a schema Ponder created (an upgrade that renamed it)", async () => {
    fake = await fakePonder();
    await fake.index([{ developer: wallet(0x45), amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    await fake.db.query(`ALTER TABLE ${SCHEMA}.stake_event RENAME TO stake_event_away`);
    // The loop counts it as a "ponder" error: retried, alerted after ALERT_AFTER_ERRORS.
    await expect(fake.round()).rejects.toMatchObject({ code: "42P01" });
  });
});

describe("EFFECTS_FROM_BLOCK (a cut-over from another system)", () => {
  it("records the welcome of an activation by an earlier stake skipped as historic, and sends the later ones", async () => {
    fake = await fakePonder({ EFFECTS_FROM_BLOCK: "15" });
    const [old, recent, welcomed] = [wallet(20), wallet(21), wallet(22)];
    await fake.register(old, "old@example.test");
    await fake.register(recent, "recent@example.test");
    // Active and welcomed under the old system: it stays active and is never emailed.
    await fake.db.query(
      "INSERT INTO developers (wallet_address, email, status, stake_amount, staked_at) VALUES ($1, 'w@example.test', 'active', 5, now())",
      [welcomed],
    );
    await fake.index(
      [
        { developer: old, amount: 5n * USDC, block: 10 },
        { developer: welcomed, amount: 5n * USDC, block: 10, log: 1 },
        { developer: recent, amount: 5n * USDC, block: 20 },
      ],
      22,
    );
    await fake.round();
    const { rows } = await fake.db.query("SELECT wallet, state, skip_reason FROM stakesync.outbox ORDER BY wallet");
    expect(rows).toEqual([
      { wallet: old, state: "skipped", skip_reason: "historic" },
      { wallet: recent, state: "pending", skip_reason: null },
    ]);
    expect(await fake.developer(old)).toMatchObject({ status: "active" });
    // Numerically equal: left as the old system wrote it, with no audit row and no job.
    expect(await fake.developer(welcomed)).toMatchObject({ status: "active", stake_amount: "5" });
    expect(await fake.audit(welcomed)).toEqual([]);
  });
});

describe("shadow mode and the plan (adopting a table another system wrote)", () => {
  it("writes and sends nothing, and plans each difference with its reason; write mode then does exactly that", async () => {
    fake = await fakePonder({ SIDECAR_MODE: "shadow", EFFECTS_FROM_BLOCK: "15" });
    const [overwrote, unstaked, orphaned, beforeSignup, agreed, later, early] = [30, 31, 32, 33, 34, 35, 36].map(
      wallet,
    );
    // What the original listener left: the last stake instead of the sum, unstakes ignored, a
    // stake a reorg took back, a stake before signup dropped, a stake applied before it confirmed.
    const rows: [string, string, number][] = [
      [overwrote as string, "active", 5],
      [unstaked as string, "active", 20],
      [orphaned as string, "active", 30],
      [beforeSignup as string, "pending", 0],
      [agreed as string, "active", 50],
      [later as string, "pending", 0],
      [early as string, "active", 9],
    ];
    for (const [w, status, amount] of rows) {
      await fake.db.query(
        `INSERT INTO developers (wallet_address, email, status, stake_amount, staked_at)
         VALUES ($1, 'someone@example.test', $2, $3, CASE WHEN $2 = 'active' THEN now() END)`,
        [w, status, amount],
      );
    }
    await fake.index(
      [
        { developer: overwrote as string, amount: 10n * USDC, block: 3 },
        { developer: overwrote as string, amount: 5n * USDC, block: 4 },
        { developer: unstaked as string, amount: 20n * USDC, block: 5 },
        { developer: unstaked as string, kind: "unstaked", amount: 20n * USDC, block: 6 },
        { developer: beforeSignup as string, amount: 40n * USDC, block: 7 },
        { developer: agreed as string, amount: 50n * USDC, block: 8 },
        { developer: later as string, amount: 7n * USDC, block: 20 },
        { developer: early as string, amount: 9n * USDC, block: 22 },
      ],
      22,
    );
    const before = (await fake.db.query("SELECT * FROM developers ORDER BY wallet_address")).rows;
    await fake.round();
    await fake.round({ reconcile: true });
    expect((await fake.db.query("SELECT * FROM developers ORDER BY wallet_address")).rows).toEqual(before);
    expect((await fake.db.query("SELECT count(*)::int AS n FROM stakesync.outbox")).rows[0].n).toBe(0);
    expect((await fake.db.query("SELECT count(*)::int AS n FROM stakesync.audit")).rows[0].n).toBe(0);

    const plan = await planDevelopers(fake.db, fake.config);
    const byWallet = new Map(plan.map((c) => [c.wallet, c]));
    expect(byWallet.get(overwrote as string)).toMatchObject({
      why: "stake summed where the old listener overwrote",
      stakeAmount: { now: "5", next: "15" },
      welcome: null,
    });
    expect(byWallet.get(unstaked as string)).toMatchObject({
      why: "unstake or slash not applied",
      status: { now: "active", next: "inactive" },
    });
    expect(byWallet.get(orphaned as string)).toMatchObject({
      why: "stake orphaned by a reorg",
      status: { next: "inactive" },
    });
    expect(byWallet.get(beforeSignup as string)).toMatchObject({
      why: "stake before signup",
      status: { now: "pending", next: "active" },
      welcome: "historic", // block 7, before EFFECTS_FROM_BLOCK
    });
    expect(byWallet.get(later as string)).toMatchObject({ why: "stake before signup", welcome: "send" });
    expect(byWallet.get(later as string)?.stakedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(byWallet.get(early as string)?.why).toMatch(/^stake not confirmed yet/);
    expect(byWallet.has(agreed as string)).toBe(false);
    expect(await countDiffering(fake.db, fake.config)).toBe(plan.length);
    expect(plan).toHaveLength(6);

    // Switched to write mode: the next round does what the plan said, and welcomes only `later`.
    fake.config.mode = "write";
    await fake.round();
    const { rows: jobs } = await fake.db.query(
      "SELECT wallet, state, skip_reason FROM stakesync.outbox ORDER BY wallet",
    );
    expect(jobs).toEqual([
      { wallet: beforeSignup, state: "skipped", skip_reason: "historic" },
      { wallet: later, state: "pending", skip_reason: null },
    ]);
    for (const change of plan) {
      const row = await fake.developer(change.wallet);
      expect(row?.status).toBe(change.status.next);
      expect(Number(row?.stake_amount)).toBe(Number(change.stakeAmount.next));
    }
    expect(await fake.developer(agreed as string)).toMatchObject({ status: "active", stake_amount: "50" });
    expect(await planDevelopers(fake.db, fake.config)).toEqual([]);

    // A developer the old system activated, turned inactive by stakesync (the unstake it had
    // ignored), stakes again after the cut-over: active again, but never welcomed a second time.
    await fake.index([{ developer: unstaked as string, amount: 3n * USDC, block: 30 }], 32);
    fake.config.mode = "shadow"; // synced, not written: what would the write do?
    await fake.round();
    expect((await planDevelopers(fake.db, fake.config)).find((c) => c.wallet === unstaked)).toMatchObject({
      status: { now: "inactive", next: "active" },
      welcome: "historic",
    });
    fake.config.mode = "write";
    await fake.round();
    expect(await fake.developer(unstaked as string)).toMatchObject({ status: "active" });
    const { rows: again } = await fake.db.query("SELECT state, skip_reason FROM stakesync.outbox WHERE wallet = $1", [
      unstaked,
    ]);
    expect(again).toEqual([{ state: "skipped", skip_reason: "historic" }]);
  });
});

describe("a round's cost with a large application table", () => {
  /** Rows of `table` read by sequential scans, as the statistics say once this session flushed. */
  const scanned = async (table = "developers") => {
    await fake.db.query("SELECT pg_stat_force_next_flush()");
    await fake.db.query("SELECT 1"); // the flush happens at the end of a transaction
    const other = new pg.Client({ connectionString: fake.url });
    await other.connect();
    try {
      const { rows } = await other.query<{ n: string }>(
        "SELECT seq_tup_read::text AS n FROM pg_stat_user_tables WHERE relname = $1",
        [table],
      );
      return Number(rows[0]?.n);
    } finally {
      await other.end();
    }
  };

  it("reads only the developers a block touches, through the index and the locked rows", async () => {
    fake = await fakePonder();
    // Rows registered long ago: what a production table holds; a realtime round must not scan it.
    await fake.db.query(
      `INSERT INTO developers (wallet_address, email, updated_at)
       SELECT '0x' || lpad(to_hex(g), 40, '0'), NULL, now() - interval '1 hour' FROM generate_series(1, 5000) g`,
    );
    await fake.db.query("ANALYZE developers");
    const w = wallet(0x42);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    const before = await scanned();
    const { changes } = await fake.round();
    expect(changes.map((c) => c.wallet)).toEqual([w]);
    // The queue and the write each scanned the whole table before (5,000 rows each, 87 ms a
    // round at 50,000 developers instead of 11).
    expect((await scanned()) - before).toBeLessThan(100);
  });

  it("finds a first activation through Ponder's index on (chain, developer), not by reading every event", async () => {
    fake = await fakePonder();
    await pastEvents(fake, 50_000, { perBlock: 10_000 });
    await fake.db.query(`ANALYZE ${SCHEMA}.stake_event`);
    const w = wallet(0x47);
    await fake.register(w, "dev@example.com");
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    const before = await scanned("stake_event");
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    // The index leads with chain_id: without the chain in the look-up's WHERE (only in a join),
    // every first activation read all of Ponder's events (44 ms at 200,000 events, 0.3 ms now).
    expect((await scanned("stake_event")) - before).toBeLessThan(1000);
  });

  it("sums a block's developers' stakes through chain_stake's key, not by reading every wallet's", async () => {
    fake = await fakePonder();
    // 20,000 wallets staked long ago (none registered), summed into chain_stake by a catch-up.
    await pastEvents(fake, 20_000);
    await fake.progress({ latest: 120, safe: 0 });
    await fake.round();
    await fake.db.query("ANALYZE stakesync.chain_stake");
    const w = wallet(0x48);
    await fake.register(w, "dev@example.com");
    await fake.index([{ developer: w, amount: 5n * USDC, block: 130 }], 132);
    const before = await scanned("chain_stake");
    const { changes } = await fake.round();
    expect(changes.map((c) => c.wallet)).toEqual([w]);
    // The queue's look-up and the developers write each hashed all of chain_stake (the step's
    // temp tables have no statistics): 1.5 ms each a round at 20,000 wallets, and growing.
    expect((await scanned("chain_stake")) - before).toBeLessThan(100);
  });

  it("does not take a developer it wrote below the threshold for a registration: the rounds between blocks stay quiet", async () => {
    fake = await fakePonder({ MIN_STAKE: "10" });
    const w = wallet(0x49);
    await fake.register(w, "dev@example.com");
    await fake.index([{ developer: w, amount: 4n * USDC, block: 10 }], 12);
    await fake.round();
    // Written a moment ago, pending, with stake: what a registration in the last minute looks like.
    expect(await fake.developer(w)).toMatchObject({ status: "pending", stake_amount: "4.000000" });
    const { sent } = await sending(fake, () => fake.round());
    // Taken for one, every round for a minute re-read it and ran the whole step (the bench's
    // realtime stakes, below the threshold, were all such).
    expect(sent.some((q) => q.includes("INSERT INTO sync_delta"))).toBe(false);
    // A row the application changes is still one: set back to no stake, it is written again.
    await fake.db.query("UPDATE developers SET stake_amount = 0, updated_at = now() WHERE wallet_address = $1", [w]);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending", stake_amount: "4.000000" });
  });

  it("plans a block's statements once per connection, and follows Ponder's table when it is made again", async () => {
    fake = await fakePonder();
    const plans = async () =>
      (
        await fake.db.query<{ statements: number; custom: number; generic: number }>(
          `SELECT count(*)::int AS statements, coalesce(sum(custom_plans), 0)::int AS custom,
                  coalesce(sum(generic_plans), 0)::int AS generic FROM pg_prepared_statements`,
        )
      ).rows[0];
    let block = 10;
    const stakeRound = async (n: number) => {
      const w = wallet(0x100 + n);
      await fake.register(w, `dev${n}@example.com`);
      await fake.index([{ developer: w, amount: 5n * USDC, block }], block + 2);
      block += 3;
      await fake.round();
      await fake.round(); // between blocks
      expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    };
    for (let n = 0; n < 3; n++) await stakeRound(n);
    const warm = await plans();
    expect(warm?.statements).toBeGreaterThan(10);
    for (let n = 3; n < 6; n++) await stakeRound(n);
    const later = await plans();
    // The same statements, none planned for its values: each run reuses its one plan.
    expect(later?.statements).toBe(warm?.statements);
    expect(later?.custom).toBe(0);
    expect(later?.generic).toBeGreaterThan(warm?.generic ?? 0);
    // Ponder's table made again (another relation of the same name, as a restart of `ponder dev`
    // makes it): the statements prepared on the old one are planned again on the new.
    await fake.db.query(`
      CREATE TABLE ${SCHEMA}.stake_event_again (LIKE ${SCHEMA}.stake_event INCLUDING ALL);
      INSERT INTO ${SCHEMA}.stake_event_again SELECT * FROM ${SCHEMA}.stake_event;
      DROP TABLE ${SCHEMA}.stake_event;
      ALTER TABLE ${SCHEMA}.stake_event_again RENAME TO stake_event`);
    for (let n = 6; n < 8; n++) await stakeRound(n);
  });

  it("answers a round between blocks with two yes/no questions in one query, not the whole step", async () => {
    fake = await fakePonder();
    await fake.register(wallet(0x43));
    await fake.index([{ developer: wallet(0x43), amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    /** The queries a round sends; its outcome is the same either way. */
    const queries = async (to: number) => {
      const { sent, result } = await sending(fake, () => fake.round());
      expect(result.step).toMatchObject({ kind: "stepped", chains: [{ chainId: 31337, to, added: 0, removed: 0 }] });
      return sent;
    };
    const diffs = (sent: string[]) => sent.some((q) => q.includes("INSERT INTO sync_delta"));
    await fake.progress({ latest: 13, safe: 0 }); // a new block, without events
    const full = await queries(11);
    expect(diffs(full)).toBe(true);
    const quiet = await queries(11); // nothing new
    expect(diffs(quiet)).toBe(false);
    // As many round trips as a block's (the diff's step now sends its look-ups with its COMMIT),
    // but without the diff's work on the server.
    expect(quiet.length).toBeLessThanOrEqual(full.length);
    // The fake's read of the head, BEGIN with the cursors and the progress, the two questions
    // with the pending list, COMMIT.
    expect(quiet.length).toBeLessThanOrEqual(4);
    // Ponder behind the cursor (a lagging provider): its own events are not missing from the
    // ledger, so the same two questions answer, and nothing is taken back.
    await fake.progress({ latest: 10, safe: 0 });
    const behind = await queries(11);
    expect(diffs(behind)).toBe(false);
    expect(behind.length).toBeLessThanOrEqual(4);
    expect(await fake.developer(wallet(0x43))).toMatchObject({ stake_amount: "5.000000" });
  });

  it("sends a block's first activation, its audit and welcome job included, in 5 queries", async () => {
    fake = await fakePonder();
    const w = wallet(0x44);
    await fake.register(w, "dev@example.com");
    await fake.progress({ latest: 9, safe: 0 });
    await fake.round(); // Ponder's tables seen: from now on its progress is read with the BEGIN
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    const sent = (await sending(fake, () => fake.round())).sent.length;
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    const { rows } = await fake.db.query("SELECT kind FROM stakesync.outbox WHERE wallet = $1", [w]);
    expect(rows).toEqual([{ kind: "welcome_email" }]);
    // Each query is a round trip, most of a realtime round (of 14.3 ms at 19 queries, the
    // server spent 6.2 ms planning and running the statements): statements go together, values
    // inlined, each transaction's COMMIT with its last statements, the queue's look-ups with the
    // step's, Ponder's progress with the BEGIN, the claim with the write (31 queries, then 19,
    // then 12, then 10, now 5). One is the fake's own read of the head: the sidecar's are the
    // BEGIN with the cursors and the progress, the diff, the rest of the step with its COMMIT, and
    // the developers write with its claim and COMMIT.
    expect(sent).toBeLessThanOrEqual(5);
  });

  it("looks the developers of a step of more than 1,000 events up as a catch-up does, to a block's result", async () => {
    for (const others of [0, 1_100]) {
      await fake?.close();
      fake = await fakePonder({ MIN_STAKE: "10" });
      const w = wallet(0x46);
      await fake.register(w);
      await pastEvents(fake, others, { wallets: 1_000_000 }); // a wallet each
      // The second stake crosses 10: the first activation is replayed event by event.
      await fake.index(
        [
          { developer: w, amount: 4n * USDC, block: 10 },
          { developer: w, amount: 7n * USDC, block: 11 },
        ],
        13,
      );
      const on = fake;
      const { sent } = await sending(on, () => on.round());
      // A block's few events: the look-ups' wallets computed by the server, in the step's last round trip.
      expect(sent.some((q) => q.includes("ARRAY(SELECT wallet FROM affected)"))).toBe(others === 0);
      const row = await fake.developer(w);
      expect(row).toMatchObject({ status: "active", stake_amount: "11.000000" });
      expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 11 * 12) * 1000);
    }
  });

  it("passes the look-ups' wallets through the client when the developers table lacks its wallet index", async () => {
    fake = await fakePonder({ MIN_STAKE: "10" });
    await fake.db.query("DROP INDEX developers_wallet_lower_idx");
    await fake.newTerm(); // a term looks the index up when it starts
    const w = wallet(0x49);
    await fake.register(w);
    await fake.index(
      [
        { developer: w, amount: 4n * USDC, block: 10 },
        { developer: w, amount: 7n * USDC, block: 11 },
      ],
      13,
    );
    const { sent } = await sending(fake, () => fake.round());
    // Computed on the server, the wallets would not be hashed: without the index each would be
    // compared with every row of the application's table.
    expect(sent.some((q) => q.includes("ARRAY(SELECT wallet FROM affected)"))).toBe(false);
    // Nor is the developers write prepared: a generic plan would walk its wallets likewise.
    expect(sent.some((q) => /EXECUTE|PREPARE/.test(q) && q.includes("claimed"))).toBe(false);
    const row = await fake.developer(w);
    expect(row).toMatchObject({ status: "active", stake_amount: "11.000000" });
    expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 11 * 12) * 1000);
  });

  it("truncates the step's temp tables after a catch-up instead of scanning its dead rows ever after", async () => {
    fake = await fakePonder();
    await pastEvents(fake, 20_000, { wallets: 3000, perBlock: 100, walletBase: 1 });
    await fake.progress({ latest: 210, safe: 0, finalized: 0 });
    const size = async () =>
      Number(
        (await fake.db.query<{ n: string }>("SELECT pg_total_relation_size('pg_temp.sync_delta')::text AS n")).rows[0]
          ?.n,
      );
    await fake.round();
    expect(await size()).toBeGreaterThan(1024 * 1024); // 20,000 events, one row each (none final yet)
    await fake.round();
    expect(await size()).toBeLessThan(64 * 1024);
  });
});

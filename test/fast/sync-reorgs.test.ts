/**
 * The sync through reorgs deeper than CONFIRMATIONS, on fabricated Ponder tables.
 */
import { afterEach, describe, expect, it } from "vitest";
import { newReorgWatch, reorgHeld, reorgTable } from "../../sidecar/sync/reorg-watch";
import {
  applicationTransaction,
  type Fake,
  fakePonder,
  ponderReorgTransaction,
  ponderReorgTrigger,
  progressOnChain,
  refuseUpdates,
  SCHEMA,
  USDC,
  wallet,
} from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

/** `w` active with 5 USDC, its staked_at the time of `block` (the fake's: 12 s a block). */
async function expectActivatedIn(w: string, block: number) {
  const row = await fake.developer(w);
  expect(row).toMatchObject({ status: "active", stake_amount: "5.000000" });
  expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + block * 12) * 1000);
}

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
    // Seen by the questions between blocks: the step that follows them takes the usual way at
    // once, not a plain block's round trip that the server would stop.
    expect(deferred.step.kind === "stepped" && deferred.step.plainStopped).toBeUndefined();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    // The next block's transaction: the new fork's stake (same position, another transaction).
    await fake.index([{ developer: w, amount: 12n * USDC, block: 20, tx: "0xbb" }], 24);
    const corrected = await fake.round();
    expect(corrected.step).toMatchObject({ kind: "stepped", deferred: [] });
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "12.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg active 12.000000"]);
    expect(corrected.changes.map((c) => c.reason)).toEqual(["reorg"]);
  });

  it("first seen with the new fork's next block: the block's one round trip is stopped, and the removal waits as ever", async () => {
    fake = await fakePonder();
    const w = wallet(5);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }], 23);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    const cursor = async () => (await fake.db.query("SELECT block::int FROM stakesync.cursor")).rows[0]?.block;
    expect(await cursor()).toBe(21);
    // Both halves of the reorg before the next step: the orphan gone, and a new block on the new
    // fork. A new confirmed block, Ponder ready: the step sends its diff with the rest and its
    // COMMIT (a plain block, step.ts), and the server stops that round trip at the removal.
    await fake.deleteAbove(19);
    await fake.index([{ developer: w, amount: 12n * USDC, block: 20, tx: "0xbb" }], 25);
    const sent: string[] = [];
    const query = fake.db.query.bind(fake.db);
    fake.db.query = ((...args: Parameters<typeof query>) => {
      sent.push(String(typeof args[0] === "string" ? args[0] : ""));
      return query(...args);
    }) as typeof query;
    const first = await fake.round().finally(() => {
      fake.db.query = query;
    });
    expect(sent).toContain("ROLLBACK");
    // Then the step ran the usual way: a first sighting waits, nothing of the stopped one stayed.
    expect(first.step).toMatchObject({ kind: "stepped", chains: [], deferred: [31337] });
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "30.000000" });
    expect(await cursor()).toBe(21);
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
    // Confirmed by the next checkpoint: one correction.
    await fake.progress({ latest: 26, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "12.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg active 12.000000"]);
    expect(await cursor()).toBe(24);
  });

  it("drops a refused developer's dead letter once a reorg takes its stake back, and its activation with it", async () => {
    fake = await fakePonder();
    const [w, other] = [wallet(8), wallet(9)];
    await fake.register(w);
    await fake.register(other);
    await refuseUpdates(fake, `NEW.wallet_address = '${w}'`);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10, tx: "0xaa" }], 13);
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([w]);
    // A reorg takes the stake back: the row (pending, 0) equals the chain again.
    await fake.deleteAbove(9);
    await fake.round();
    await fake.index([{ developer: other, amount: 5n * USDC, block: 10, tx: "0xbb" }], 14);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending", stake_amount: "0" });
    // The row equals the chain again: no dead letter any more (the alert clears), nor its activation.
    expect((await fake.db.query("SELECT wallet FROM stakesync.developer_queue")).rows).toEqual([]);
    // The application's rule fixed, the developer stakes on the chain as it is now.
    await fake.db.query("DROP TRIGGER refuse ON developers");
    await fake.index([{ developer: w, amount: 5n * USDC, block: 20, tx: "0xcc" }], 23);
    await fake.round();
    await expectActivatedIn(w, 20); // not the orphaned block 10
  });

  it("takes a refused developer's activation from the new fork when a reorg moves the stake to another block", async () => {
    fake = await fakePonder();
    const w = wallet(10);
    await fake.register(w);
    await refuseUpdates(fake, `NEW.wallet_address = '${w}'`);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10, tx: "0xaa" }], 13);
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([w]);
    await fake.db.query("DROP TRIGGER refuse ON developers");
    // The reorg: block 10's stake gone, the same stake in block 11 of the new fork.
    await fake.deleteAbove(9);
    await fake.round();
    await fake.index([{ developer: w, amount: 5n * USDC, block: 11, tx: "0xbb" }], 14);
    await fake.round();
    await expectActivatedIn(w, 11);
  });

  it("writes a held developer's first activation from a later stake, not from the orphaned block a reorg took back", async () => {
    fake = await fakePonder({ EFFECTS_FROM_BLOCK: "12" });
    const [w, other] = [wallet(11), wallet(12)];
    await fake.register(w, "w@example.test");
    await fake.register(other);
    // An application transaction holds w's row (a session left idle in its transaction).
    const app = await applicationTransaction(
      fake.url,
      "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE",
      [w],
    );
    try {
      await fake.index([{ developer: w, amount: 5n * USDC, block: 10, tx: "0xaa" }], 13);
      expect((await fake.round()).held).toBe(1); // queued, with block 10's crossing
      // A reorg takes block 10 back: the row (pending, 0) equals the chain again.
      await fake.deleteAbove(9);
      await fake.round();
      await fake.index([{ developer: other, amount: 5n * USDC, block: 10, tx: "0xbb" }], 14);
      await fake.round();
      // w stakes again, in block 13 of the new fork.
      await fake.index([{ developer: w, amount: 5n * USDC, block: 13, tx: "0xcc" }], 16);
      await fake.round();
    } finally {
      await app.end();
    }
    await fake.round();
    // Before, the entry kept block 10's crossing: staked_at a block no longer on the chain, and
    // the welcome taken for historic (block 10 is below EFFECTS_FROM_BLOCK 12).
    await expectActivatedIn(w, 13);
    const { rows } = await fake.db.query("SELECT state FROM stakesync.outbox WHERE wallet = $1", [w]);
    expect(rows).toEqual([{ state: "pending" }]);
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
    // One after another: a pg client queues concurrent queries, which pg 9 will refuse.
    const statuses = async () => {
      const found: (string | undefined)[] = [];
      for (const w of wallets) found.push((await fake.developer(w))?.status);
      return found;
    };
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

  /**
   * A stake in block 20 not confirmed yet (block 21 committed, CONFIRMATIONS 2, cursor 19); before
   * the sidecar's next round (busy, or frozen for a second), Ponder commits block 22, then takes a
   * lagging provider's head, 15, for a reorg: its transaction deletes the rows above it and creates
   * its trigger again; its checkpoint is lowered by its next block only. `newTerm`: a new leader
   * term (a failover) comes before that round, knowing no earlier OID.
   */
  async function lagReorg(n: number, newTerm: boolean) {
    fake = await fakePonder();
    const w = wallet(n);
    await fake.register(w);
    await ponderReorgTrigger(fake.db, SCHEMA);
    const stake = { developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" };
    await fake.index([stake], 21);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending" });
    await fake.progress({ latest: 22, finalized: 0 });
    await ponderReorgTransaction(fake.db, SCHEMA, 15);
    if (newTerm) await fake.newTerm();
    await fake.round();
    // Before, the cursor went to 20, past the stake Ponder had deleted and never shown the step.
    expect((await fake.db.query("SELECT block::int FROM stakesync.cursor")).rows).toEqual([{ block: 19 }]);
    // The next block's commit on the new fork (the same blocks again, from a provider caught up).
    await fake.progress({ latest: 16, finalized: 0 });
    await fake.round();
    await fake.index([stake], 23);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
    // README: "A lagging provider's blocks come back with the same events, so it changes nothing".
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
    return w;
  }

  it("deeper than CONFIRMATIONS, its reorg transaction seen with a block committed before it, does not move the cursor past the rows it deleted", async () => {
    await lagReorg(0x71, false);
  });

  it("deeper than CONFIRMATIONS, its reorg transaction committed just before a new term's first step, does not move the cursor past the rows it deleted", async () => {
    const w = await lagReorg(0x72, true);
    // A term that begins with the checkpoint written after the trigger holds nothing.
    await fake.newTerm();
    await fake.index([{ developer: w, amount: 5n * USDC, block: 24, tx: "0xab" }], 26);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ stake_amount: "35.000000" });
  });

  it("reads Ponder's reorg trigger on the table behind a views schema's view, and looks the table up again once it is made anew", async () => {
    fake = await fakePonder();
    const watch = newReorgWatch();
    await fake.db.query(`CREATE SCHEMA views; CREATE VIEW views.stake_event AS SELECT * FROM ${SCHEMA}.stake_event`);
    const table = async () =>
      (await fake.db.query("SELECT $1::regclass::oid::text AS oid", [`${SCHEMA}.stake_event`])).rows[0]?.oid;
    expect(await reorgTable(fake.db, watch, "views")).toBe(await table());
    expect(await reorgTable(fake.db, watch, SCHEMA)).toBe(await table());
    // A `ponder dev` restart makes the table anew, Ponder not ready meanwhile: looked up again
    // once it is ready, not while it is not.
    const progress = (ready: boolean) => progressOnChain({ ready });
    reorgHeld(watch, SCHEMA, progress(false));
    await fake.db.query(
      `ALTER TABLE ${SCHEMA}.stake_event RENAME TO old_stake_event; CREATE TABLE ${SCHEMA}.stake_event (LIKE ${SCHEMA}.old_stake_event)`,
    );
    expect(await reorgTable(fake.db, watch, SCHEMA)).toBeNull();
    reorgHeld(watch, SCHEMA, progress(true));
    expect(await reorgTable(fake.db, watch, SCHEMA)).toBe(await table());
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

/**
 * The sync with a second Ponder instance (PONDER_REPLICA_SCHEMAS), on fabricated Ponder tables.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { type Fake, fakePonder, ponderReorgTransaction, ponderReorgTrigger, SCHEMA, USDC, wallet } from "./ponder-fake";

const REPLICA = "ponder_replica";
let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

/**
 * Two instances (PONDER_REPLICA_SCHEMAS) that both indexed up to `head` a 30 USDC stake in block
 * 20 of wallet number `n`, registered; one round has synced it. Returns the stake's events too.
 */
async function stakedOnBoth(n: number, head: number) {
  fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
  const replica = fake.replica(REPLICA);
  const w = wallet(n);
  await fake.register(w);
  const stake = [{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }];
  await fake.index(stake, head);
  await replica.index(stake, head);
  await fake.round();
  return { replica, w, stake };
}

/**
 * The second instance follows a reorg from block 19 (its rows, then its checkpoint, down) and
 * commits the new fork's block 20, without the stake; a round after each.
 */
async function secondFollowsReorg(replica: ReturnType<Fake["replica"]>) {
  await replica.deleteAbove(19);
  await fake.round();
  await replica.progress({ latest: 19, safe: 0, finalized: 0 });
  await fake.round();
  await replica.index([], 20);
  await fake.round();
}

describe("a second Ponder instance (PONDER_REPLICA_SCHEMAS)", () => {
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
    const { replica, w, stake } = await stakedOnBoth(32, 23);
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
    const { replica, w } = await stakedOnBoth(33, 30);
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
    const { replica, w } = await stakedOnBoth(34, 30);
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });

    // The second follows a reorg from block 19: rows, then checkpoint, down. The first stays at
    // 30 on the old fork, committing nothing (Ponder retrying a vanished block's logs).
    await secondFollowsReorg(replica);
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

  for (const after of ["a new term", "a restart of the one read"] as const)
    it(`does not read the orphan back after ${after} from the other, stalled on the old fork above where the one read came down`, async () => {
      const { replica, w } = await stakedOnBoth(after === "a new term" ? 36 : 37, 30);
      // The first follows a reorg from block 19 and takes the stake back on the new fork's block
      // 21; the second stays at 30 on the old fork (Ponder 0.17.7 retrying a vanished block).
      await fake.deleteAbove(19);
      await fake.round();
      await fake.progress({ latest: 19, finalized: 0 });
      await fake.round();
      await fake.index([], 20);
      await fake.round();
      await fake.progress({ latest: 21, finalized: 0 });
      await fake.round();
      expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
      // Before, the first's peak (30) alone kept the second out: a new term started it afresh at
      // 21, and a restart made the first unusable; either way the second was read, orphan and all.
      if (after === "a new term") await fake.newTerm();
      else await fake.progress({ latest: 21, safe: 19, finalized: 0, ready: false });
      await fake.round();
      expect(fake.source()).toBe(SCHEMA);
      expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
      // The second follows the reorg too: no longer left once it has committed.
      await replica.deleteAbove(19);
      await replica.progress({ latest: 21, safe: 0, finalized: 0 });
      await fake.round();
      const left = await fake.db.query("SELECT schema FROM stakesync.left_source");
      expect(left.rows.map((r) => r.schema)).not.toContain(REPLICA);
    });

  /** The stake taken back by the instance read, which followed a reorg from 19 unseen: by the next read it was at 31 of the new fork, its checkpoint never seen lower. The stake, missing, is taken back under 32. */
  async function followedUnseen(
    read: { deleteAbove: Fake["deleteAbove"]; index: Fake["index"]; progress: Fake["progress"] },
    w: string,
  ) {
    await read.deleteAbove(19);
    await read.index([], 31);
    await fake.round();
    await read.progress({ latest: 32, safe: 0, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
  }

  it("does not read the orphan back after a restart of the one read from the other, when no read saw the one read come down", async () => {
    const { replica, w } = await stakedOnBoth(0x76, 30);
    // The second stays at 30 on the old fork.
    await followedUnseen(fake, w);
    // Before, only a checkpoint seen coming down left the second: it was read, orphan and all.
    await fake.progress({ latest: 32, safe: 19, finalized: 0, ready: false });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
    // Once it has followed the reorg (committed since), it is readable again.
    await replica.deleteAbove(19);
    await replica.progress({ latest: 33, safe: 0, finalized: 0 });
    await fake.round();
    const left = await fake.db.query("SELECT schema FROM stakesync.left_source");
    expect(left.rows.map((r) => r.schema)).not.toContain(REPLICA);
  });

  it("does not read the orphan back in a new term from the first instance, when no read saw the second, read, come down", async () => {
    const { replica, w } = await stakedOnBoth(0x77, 30);
    // The first restarts: the second is read, and stays read once the first is back.
    await fake.progress({ latest: 31, safe: 19, finalized: 0, ready: false });
    await fake.round();
    await fake.progress({ latest: 31, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    // The second follows the reorg unseen; the first stays at 31 on the old fork, a block ahead.
    await followedUnseen(replica, w);
    // A new term starts at the first: before, it read the orphan back from it.
    await fake.newTerm();
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
  });

  it("records the other instance left in the transaction of the step that takes the orphan back: both or neither", async () => {
    const { w } = await stakedOnBoth(0x78, 30);
    // The record of the instance left cannot be written (here: a trigger refuses it; in life, a
    // kill or a restart between the step's commit and a write after it).
    await fake.db.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                           BEGIN RAISE EXCEPTION 'left_source refused'; END $$`);
    await fake.db.query(
      "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON stakesync.left_source FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    await fake.deleteAbove(19);
    await fake.index([], 31);
    await fake.round();
    await fake.progress({ latest: 32, safe: 0, finalized: 0 });
    // The step that takes the stake back fails whole. Before, it committed, and its record of
    // the other instance, written after, was lost: a new term read the orphan back from it.
    await expect(fake.round()).rejects.toThrow(/left_source refused/);
    expect(await fake.developer(w)).toMatchObject({ status: "active" });
    await fake.db.query("DROP TRIGGER refuse ON stakesync.left_source");
    // A failed round forgets its sightings (loop.ts): seen missing again, and taken back a block on.
    await fake.round();
    await fake.progress({ latest: 33, safe: 0, finalized: 0 });
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    const left = await fake.db.query("SELECT schema FROM stakesync.left_source");
    expect(left.rows.map((r) => r.schema)).toEqual([REPLICA]);
  });

  it("keeps one left on the old fork left when the other climbs the new fork to its height, where the checkpoints read alike", async () => {
    const { replica, w } = await stakedOnBoth(38, 30);
    // As above: the second follows a reorg from 19 and is read from its second new block on; the
    // first stays at 30 on the old fork.
    await secondFollowsReorg(replica);
    await replica.progress({ latest: 21, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    // The second climbs the new fork past 30, whose checkpoint (time, chain, number: blocks 12 s
    // apart on both forks) reads as the first's old-fork 30. Before, that cleared the first's
    // record, and a new leader, starting at the first, read the orphan back.
    for (const block of [25, 30, 31]) {
      await replica.progress({ latest: block, safe: 0, finalized: 0 });
      await fake.round();
    }
    await fake.newTerm();
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect(await fake.audit(w)).toEqual(["stake active 30.000000", "reorg inactive 0.000000"]);
  });

  it("leaves one frozen inside its reorg transaction as last seen, and keeps it left once that transaction is ended and it shows the old fork again", async () => {
    const { replica } = await stakedOnBoth(39, 30);
    // The second follows a reorg from 19 and is back at 30 on the new fork by the next read; the
    // first, read, still shows 30 of the old fork.
    await replica.deleteAbove(19);
    await fake.round();
    await replica.progress({ latest: 19, safe: 0, finalized: 0 });
    await fake.round();
    await replica.progress({ latest: 30, safe: 0, finalized: 0 });
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    // The first freezes inside its own reorg transaction, holding its tables: the second is read.
    const frozen = new pg.Client({ connectionString: fake.url });
    await frozen.connect();
    try {
      await frozen.query(
        `BEGIN; LOCK TABLE ${SCHEMA}.stake_event, ${SCHEMA}._ponder_checkpoint IN ACCESS EXCLUSIVE MODE`,
      );
      await fake.round();
      expect(fake.source()).toBe(REPLICA);
    } finally {
      // An operator's pg_terminate_backend: rolled back, it shows the old fork's 30 again.
      await frozen.end();
    }
    // The second restarts. Before, the first (its 30 read like the second's) had not been left,
    // and was read, the old fork's orphan with it.
    await replica.progress({ latest: 30, safe: 19, finalized: 0, ready: false });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    const left = await fake.db.query("SELECT schema FROM stakesync.left_source");
    expect(left.rows.map((r) => r.schema)).toContain(SCHEMA);
  }, 60_000);

  it("holds a chain whose reorg transaction the instance it switches to committed just before: no OID of that instance to compare with", async () => {
    fake = await fakePonder({ PONDER_REPLICA_SCHEMAS: REPLICA });
    const replica = fake.replica(REPLICA);
    const w = wallet(0x75);
    await fake.register(w);
    for (const schema of [SCHEMA, REPLICA]) await ponderReorgTrigger(fake.db, schema);
    const stake = [{ developer: w, amount: 30n * USDC, block: 20, tx: "0xaa" }];
    await fake.index(stake, 21);
    await replica.index(stake, 21);
    await fake.round();
    expect(fake.source()).toBe(SCHEMA);
    expect(await fake.developer(w)).toMatchObject({ status: "pending" });
    // The second commits block 22, then takes a lagging provider's head (15) for a reorg: rows
    // above it deleted, its trigger made anew, its checkpoint still at 22.
    await replica.progress({ latest: 22, finalized: 0 });
    await ponderReorgTransaction(fake.db, REPLICA, 15);
    // The first restarts: the second is read. Before, its first step moved the cursor to 20, past
    // the stake its reorg had deleted, and it came back late as a reorg's.
    await fake.deleteAbove(5);
    await fake.progress({ latest: 21, safe: 5, ready: false });
    await fake.round();
    expect(fake.source()).toBe(REPLICA);
    expect((await fake.db.query("SELECT block::int FROM stakesync.cursor")).rows).toEqual([{ block: 19 }]);
    // Its next blocks, the stake again on the new fork.
    await replica.progress({ latest: 16, finalized: 0 });
    await fake.round();
    await replica.index(stake, 23);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "30.000000" });
    expect(await fake.audit(w)).toEqual(["stake active 30.000000"]);
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

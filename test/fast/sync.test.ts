/**
 * The sync's operations against fabricated Ponder tables: confirmations, activation, a restarted
 * Ponder, registrations, Ponder's tables, a cut-over. Milliseconds each; the other sync-*.test.ts
 * files take the second Ponder, deep reorgs, the application's own writes and a round's cost.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { type Mismatch, noteQueued, verify } from "../../cli/verify";
import { claimNextJob } from "../../sidecar/effects/outbox";
import { readStatus } from "../../sidecar/status";
import { countDiffering } from "../../sidecar/sync/plan-developers";
import { readProgress } from "../../sidecar/sync/sql/read-progress";
import { syncStep } from "../../sidecar/sync/step";
import {
  BASE,
  CHAIN,
  checkpoint,
  type Fake,
  fakeOnTwoChains,
  fakePonder,
  leadingSession,
  SCHEMA,
  sidecarParts,
  syncOutcome,
  USDC,
  wallet,
} from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

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

  it.each([
    ["the row without an email first", false],
    ["the row with the email first", true],
  ])(
    "welcomes a wallet whose two rows only one has an email for (%s), and the worker finds it",
    async (_, emailFirst) => {
      fake = await fakePonder();
      const w = wallet(0xabc123);
      const upper = w.toUpperCase().replace("0X", "0x");
      const rows: [string, string | null][] = [
        [upper, null],
        [w, "dev@example.test"],
      ];
      for (const [address, email] of emailFirst ? rows.reverse() : rows) await fake.register(address, email);
      await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
      await fake.round();
      // Which row a step met first decided it: 'skipped', 'no_email', for good.
      expect((await syncOutcome(fake)).outbox).toEqual([
        { kind: "welcome_email", wallet: w, state: "pending", skip_reason: null },
      ]);
      const { client, pid } = await leadingSession(fake.url);
      try {
        const job = await claimNextJob(
          fake.db,
          fake.config.developersTable.sql,
          { workerId: "a", leaderPid: pid },
          false,
        );
        expect(job?.email).toBe("dev@example.test");
      } finally {
        await client.end();
      }
    },
  );

  it.each([
    ["the other system's row first, the step's own write", true, true],
    ["the other system's row last, the step's own write", false, true],
    ["the other system's row first, the queue's write", true, false],
    ["the other system's row last, the queue's write", false, false],
  ])(
    "does not welcome a wallet another system activated on one of its two rows (%s)",
    async (_, theirsFirst, writeInStep) => {
      fake = await fakePonder();
      const w = wallet(0xabc125);
      const upper = w.toUpperCase().replace("0X", "0x");
      // Theirs: inactive now, activated and welcomed by the system before (staked_at); ours:
      // the same wallet in the other letter case, registered since, pending.
      const theirs = async () =>
        fake.db.query(
          `INSERT INTO developers (wallet_address, email, status, staked_at)
           VALUES ($1, 'dev@example.test', 'inactive', timestamptz '2024-01-01')`,
          [w],
        );
      const ours = () => fake.register(upper, "dev@example.test");
      for (const add of theirsFirst ? [theirs, ours] : [ours, theirs]) await add();
      await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
      await fake.round({ writeInStep });
      // Asked of the row first in order only, the other row's activation was welcomed.
      expect((await syncOutcome(fake)).outbox).toEqual([
        { kind: "welcome_email", wallet: w, state: "skipped", skip_reason: "historic" },
      ]);
    },
  );

  it("does not welcome a wallet whose other row another system keeps active", async () => {
    fake = await fakePonder();
    const w = wallet(0xabc126);
    // Active with its stake, activated by the system before: no activation of its own.
    await fake.db.query(
      `INSERT INTO developers (wallet_address, email, status, stake_amount, staked_at)
       VALUES ($1, 'dev@example.test', 'active', 5, timestamptz '2024-01-01')`,
      [w],
    );
    await fake.register(w.toUpperCase().replace("0X", "0x"), "dev@example.test");
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    expect((await syncOutcome(fake)).outbox).toEqual([
      { kind: "welcome_email", wallet: w, state: "skipped", skip_reason: "historic" },
    ]);
  });

  it("welcomes a wallet whose row with the email the application holds while its other row turns active", async () => {
    fake = await fakePonder();
    const w = wallet(0xabc124);
    await fake.register(w.toUpperCase().replace("0X", "0x"), null);
    await fake.register(w, "dev@example.test");
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    const app = new pg.Client({ connectionString: fake.url });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE", [w]);
      expect((await fake.round()).held).toBe(1);
    } finally {
      await app.query("ROLLBACK");
      await app.end();
    }
    await fake.round();
    const { developers, outbox } = await syncOutcome(fake);
    expect(developers.map((d) => d.status)).toEqual(["active", "active"]);
    expect(outbox).toEqual([{ kind: "welcome_email", wallet: w, state: "pending", skip_reason: null }]);
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

describe("a backfill batch committed with the checkpoint of the block its rows end before", () => {
  // Ponder 0.17.7 (runtime/historical.ts): a batch whose query stopped at the block before its
  // range's last carries the range's last checkpoint; that block's rows come with the next batch.
  it("is not taken to hold that block whole, with CONFIRMATIONS 0: its rows are counted when they come", async () => {
    fake = await fakePonder({ CONFIRMATIONS: "0", MIN_STAKE: "5" });
    const w = wallet(4);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 3n * USDC, block: 9 }]);
    await fake.progress({ latest: 10, safe: 10, finalized: 10, ready: false });
    await fake.round({ head: 40 });
    // The next batch: block 10's rows under the same checkpoint; then the backfill goes on.
    await fake.index([{ developer: w, amount: 3n * USDC, block: 10 }]);
    await fake.progress({ latest: 10, safe: 10, finalized: 10, ready: false });
    await fake.round({ head: 40 });
    await fake.progress({ latest: 40, safe: 40, finalized: 40, ready: true });
    await fake.round({ head: 40 });
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "6.000000" });
    expect((await syncOutcome(fake)).stakes).toEqual([{ wallet: w, chain_id: CHAIN, amount: "6000000" }]);
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

describe("a developer who registers while one of two chains recovers", () => {
  const base = BASE;
  const w = wallet(0x60);
  /** 20 USDC of w's block 20 on CHAIN, again (after a crash recovery took it), Ponder ready or not. */
  const stakeOnChain = (head: number) => fake.index([{ developer: w, amount: 20n * USDC, block: 20 }], head);
  /**
   * Two chains, 20 USDC of w's on each, each enough alone: first on CHAIN (block 20), then on
   * base (block 25, a later time). base is final there already, CHAIN's block 20 not. Both
   * applied; w has no developers row yet.
   */
  async function stakedOnBoth() {
    fake = await fakeOnTwoChains();
    await stakeOnChain(25);
    await fake.db.query(
      `INSERT INTO ${SCHEMA}.stake_event VALUES ($1, $2, $3, 'staked', $4, 25, $5, '0x${"b".repeat(64)}', 0)`,
      [checkpoint(25, { chainId: base, tx: 0n }), base, w, (20n * USDC).toString(), 1_700_000_000 + 25 * 12],
    );
    await fake.round();
  }
  const expectActivatedOnChain = async () => {
    const row = await fake.developer(w);
    expect(row).toMatchObject({ status: "active", stake_amount: "40.000000" });
    expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 20 * 12) * 1000);
  };

  it("is not activated from the other chain's later stake: pending until Ponder shows the first, then with its time", async () => {
    await stakedOnBoth();
    // CHAIN's crash recovery: its unfinalized rows are gone for now. The developer signs up, and a
    // reconciliation is due (a new leader runs one at once).
    await fake.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE chain_id = $1 AND block_number > 5`, [CHAIN]);
    await fake.progress({ latest: 25, safe: 5, ready: false });
    await fake.register(w);
    await fake.round({ reconcile: true });
    // Before, the first stake Ponder showed, base's, was taken for the crossing.
    expect(await fake.developer(w)).toMatchObject({ status: "pending", staked_at: null });
    await stakeOnChain(26);
    await fake.round({ reconcile: true });
    await expectActivatedOnChain();
  });

  it("is not activated from it either in a realtime round, Ponder ready, while a reorg's first half hides the first", async () => {
    await stakedOnBoth();
    // The reorg's first half on CHAIN: its rows from block 19 on gone, its checkpoint not lowered
    // yet. The developer signs up: found by the registrations' look-up of a realtime round.
    await fake.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE chain_id = $1 AND block_number > 18`, [CHAIN]);
    await fake.register(w);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "pending", staked_at: null });
    // The new fork has the same stake (the reorg moved other blocks).
    await stakeOnChain(26);
    await fake.round({ reconcile: true });
    await expectActivatedOnChain();
  });

  it("is not activated from it either while Ponder lacks the first at or below the final block, which the ledger no longer holds", async () => {
    await stakedOnBoth();
    // CHAIN final up to 22 (its block 20 folded, out of the ledger), then its rows gone down to
    // block 5: a multichain crash recovery (its safe block below its finalized one), or Ponder
    // indexing afresh. The developer signs up; a reconciliation runs.
    await fake.progress({ latest: 25, safe: 22, finalized: 22 });
    await fake.round();
    expect(
      (await fake.db.query("SELECT count(*)::int AS n FROM stakesync.applied_event WHERE chain_id = $1", [CHAIN])).rows,
    ).toEqual([{ n: 0 }]);
    await fake.db.query(`DELETE FROM ${SCHEMA}.stake_event WHERE chain_id = $1 AND block_number > 5`, [CHAIN]);
    await fake.progress({ latest: 25, safe: 5, finalized: 22, ready: false });
    await fake.register(w);
    await fake.round({ reconcile: true });
    // Before, active with base's later time (and a welcome decided by base's EFFECTS_FROM_BLOCK).
    expect(await fake.developer(w)).toMatchObject({ status: "pending", staked_at: null });
    await stakeOnChain(26);
    await fake.progress({ latest: 26, safe: 22, finalized: 22 });
    await fake.round({ reconcile: true });
    await expectActivatedOnChain();
  });

  it("is activated though a chain taken out of CHAINS left events in the ledger that no Ponder shows", async () => {
    await stakedOnBoth();
    // Chain 10, listed once, its last unfinalized events still in the ledger: one of w's, earlier
    // than any stake here. No Ponder indexes chain 10 any more.
    await fake.db.query(
      `INSERT INTO stakesync.applied_event (chain_id, event_key, wallet, delta, block_number)
       VALUES (10, $1, $2, 1, 3)`,
      [`${checkpoint(3, { chainId: 10, tx: 0n })}:0x${"c".repeat(64)}`, w],
    );
    await fake.register(w);
    await fake.round({ reconcile: true });
    await expectActivatedOnChain();
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

describe("Ponder building its indexes (its backfill over)", () => {
  it("is told by its CREATE INDEX's SHARE lock on stake_event while it is not ready, and only then", async () => {
    fake = await fakePonder();
    await fake.progress({ latest: 40, ready: false });
    const indexing = async () => (await readProgress(fake.db, SCHEMA))?.get(CHAIN)?.indexing;
    expect(await indexing()).toBe(false);
    // Ponder's CREATE INDEX, held open: the lock it takes, in a session of its own.
    const ponder = new pg.Client({ connectionString: fake.url });
    await ponder.connect();
    try {
      await ponder.query("BEGIN");
      await ponder.query(`CREATE INDEX ON ${SCHEMA}.stake_event (transaction_hash)`);
      expect(await indexing()).toBe(true);
      // A step reads Ponder's events beside it (ACCESS SHARE), and brings the chain to its
      // checkpoint, though no catch-up is due (the loop's "no"): to the block before it, less
      // CONFIRMATIONS. Not the checkpoint's own block: the lock, read live, may postdate the
      // step's snapshot and Ponder's last batch in it (trustedBlock); it waits for /ready.
      const heads = new Map([[CHAIN, { block: 1000, at: Date.now() }]]);
      const step = await syncStep(fake.db, fake.config, new Map(), { heads, catchUp: "no", walletIndexed: true });
      expect(step).toMatchObject({ kind: "stepped", chains: [{ to: 37 }], besideIndexBuild: true });
      // A due catch-up later in a long build steps an empty window: no block held back by it, and
      // the loop's 20 ms poll for /ready (besideIndexBuild) is not started again by it.
      const due = await syncStep(fake.db, fake.config, new Map(), { heads, catchUp: "due", walletIndexed: true });
      expect(due).toMatchObject({ kind: "stepped", besideIndexBuild: false });
      await fake.progress({ latest: 40, ready: true });
      expect(await indexing()).toBe(false);
    } finally {
      await ponder.end();
    }
    await fake.progress({ latest: 40, ready: false });
    expect(await indexing()).toBe(false);
  });
});

describe("a chain removed from CHAINS", () => {
  it("no longer counts in stake_amount, as in stakesync verify, and counts again once listed again", async () => {
    fake = await fakePonder();
    const w = wallet(0x50);
    await fake.register(w);
    // Synced from chain 8453 before it left CHAINS: 20 USDC there.
    await fake.db.query(
      "INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block) VALUES ($1, 8453, $2, 100)",
      [w, (20n * USDC).toString()],
    );
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round({ reconcile: true });
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    expect(await countDiffering(fake.db, fake.config)).toBe(0);
    // Listed again (its cursor and stake kept): its stake counts again at the next reconciliation.
    const both = { ...fake.config, chains: [...fake.config.chains, { ...fake.config.chains[0], id: 8453 }] };
    expect(await countDiffering(fake.db, both as typeof fake.config)).toBe(1);
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

  it("never welcomes again a developer whose row another system activated, once EFFECTS_FROM_BLOCK is unset", async () => {
    // After the cut-over: the variable gone (or missing from one sidecar of a rolling deploy), or
    // the stakesync schema dropped and made again. staked_at without a job of ours says it.
    fake = await fakePonder();
    const w = wallet(23);
    await fake.db.query(
      "INSERT INTO developers (wallet_address, email, status, stake_amount, staked_at) VALUES ($1, 'w@example.test', 'active', 5, now())",
      [w],
    );
    // The old system missed an unstake: stakesync finds no stake and turns the row inactive.
    await fake.round({ reconcile: true });
    expect(await fake.developer(w)).toMatchObject({ status: "inactive" });
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    expect(await fake.developer(w)).toMatchObject({ status: "active" });
    const { rows } = await fake.db.query("SELECT state, skip_reason FROM stakesync.outbox WHERE wallet = $1", [w]);
    expect(rows).toEqual([{ state: "skipped", skip_reason: "historic" }]);
  });

  it("welcomes a developer whose activation an application trigger held back, once it lets it through (not in a cut-over)", async () => {
    // The application keeps status pending until the developer is verified: the sidecar's write
    // sets staked_at, the trigger keeps the status, and no job is made. That staked_at is ours.
    // With EFFECTS_FROM_BLOCK set, such a row counts as the old system's: historic (README).
    const envs: Record<string, string>[] = [{}, { EFFECTS_FROM_BLOCK: "5" }];
    for (const env of envs) {
      await fake?.close();
      fake = await fakePonder(env);
      const w = wallet(24);
      await fake.register(w, "w@example.test");
      await fake.db.query(`
        CREATE TABLE verified (wallet text);
        CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.status = 'active' AND NOT EXISTS (SELECT 1 FROM verified WHERE wallet = NEW.wallet_address) THEN
            NEW.status := OLD.status;
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER hold BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION hold();`);
      await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
      await fake.round();
      expect(await fake.developer(w)).toMatchObject({ status: "pending" });
      await fake.db.query("INSERT INTO verified VALUES ($1)", [w]);
      await fake.round({ reconcile: true });
      expect(await fake.developer(w)).toMatchObject({ status: "active" });
      const { rows } = await fake.db.query("SELECT state, skip_reason FROM stakesync.outbox WHERE wallet = $1", [w]);
      const welcome = env.EFFECTS_FROM_BLOCK
        ? { state: "skipped", skip_reason: "historic" }
        : { state: "pending", skip_reason: null };
      expect(rows, JSON.stringify(env)).toEqual([welcome]);
    }
  });
});

it("shows no cursor on /status without what its step queued: a step that commits during the read is seen whole or not at all", async () => {
  fake = await fakePonder();
  const w = wallet(40);
  await fake.register(w);
  await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
  await fake.round();
  const [before] = (await fake.db.query<{ block: string }>("SELECT block FROM stakesync.cursor")).rows;
  // What a step commits: the cursor moved and the developer it changed queued, in one transaction.
  const step = () =>
    fake.db.query(`BEGIN; UPDATE stakesync.cursor SET block = block + 5;
      INSERT INTO stakesync.developer_queue (wallet, reason) VALUES ('${w}', 'stake'); COMMIT`);
  // The status's reads, each on a connection of the pool as the sidecar's: the cursors' held until
  // the queue's counts are read, if they are read beside it, and the step committed meanwhile.
  const pool = new pg.Pool({ connectionString: fake.url, max: 4 });
  let counts: Promise<unknown> | undefined;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const reads = {
    query: async (text: string, values?: unknown[]) => {
      if (text.includes("refused_last_hour")) {
        const answer = pool.query(text, values);
        counts = answer.catch(() => undefined);
        return answer;
      }
      if (text.includes("FROM stakesync.cursor")) {
        await sleep(20);
        await (counts ?? sleep(200));
        await step();
      }
      return pool.query(text, values);
    },
  } as unknown as pg.Pool;
  try {
    const { heads, loop } = sidecarParts(fake.config);
    const status = await readStatus(reads, fake.config, heads, null, loop.state);
    expect(status.chains[0]?.synced).toBe(Number(before?.block) + 5);
    expect(status.developers.queued).toBe(1);
  } finally {
    await pool.end();
  }
});

it("stakesync verify refuses, exit 2, a chain no sidecar has synced, instead of comparing it at the block before START_BLOCK", async () => {
  fake = await fakePonder();
  await fake.register(wallet(0x70));
  // Migrations ran; no step yet. Before: "OK", 0 against 0 at block 0, whatever the chain held.
  const outcome = await verify(fake.config, () => undefined).catch((error: Error) => error);
  expect(String(outcome)).toBe(
    `Error: no sidecar has synced chain ${CHAIN} yet: run one (SIDECAR_MODE=shadow writes nothing) until /ready answers 200`,
  );
});

it("stakesync verify notes the mismatches of rows the sidecar has queued, not written yet, in write mode, and of rows the database refused", () => {
  const mismatch = (wallet: string, field: Mismatch["field"] = "stake"): Mismatch => ({
    table: "developers",
    wallet,
    chainId: "all",
    field,
    expected: "5.000000",
    found: "0.000000",
  });
  const [queued, refused, drifted, unwritten] = [wallet(41), wallet(42), wallet(43), wallet(44)];
  const found = [
    mismatch(queued),
    mismatch(queued, "status"),
    mismatch(refused),
    mismatch(drifted),
    mismatch(unwritten),
    { ...mismatch(queued), table: "ponder" as const, chainId: 31337 },
  ];
  const queue = [
    { wallet: queued, state: "pending" },
    { wallet: refused, state: "dead" },
    { wallet: unwritten, state: "unwritten" },
  ];
  const written = noteQueued(found, queue, "write");
  expect(written.queued).toEqual([queued, unwritten]);
  // Still mismatches: the rows are not the chain's (exit 1, as documented), each with its note.
  expect(written.mismatches.map((m) => [m.table, m.wallet, m.note?.split(":")[0] ?? null])).toEqual([
    ["developers", queued, "queued"],
    ["developers", queued, "queued"],
    ["developers", refused, "refused by the database"],
    ["developers", drifted, null],
    ["developers", unwritten, "synced while Ponder backfills"],
    ["ponder", queued, null],
  ]);
  // Shadow mode never writes its queue: no row is "queued".
  const shadow = noteQueued(found, queue, "shadow");
  expect(shadow.queued).toEqual([]);
  expect(shadow.mismatches.filter((m) => m.note?.startsWith("queued"))).toEqual([]);
});

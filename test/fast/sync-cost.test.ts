/**
 * What a sync round reads with a large application table and many past events, on fabricated
 * Ponder tables (the queries it sends and their plans: sync-queries.test.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyRegistrations } from "../../sidecar/sync/sql/find-registrations";
import { type Fake, fakeOnTwoChains, fakePonder, pastEvents, SCHEMA, USDC, wallet } from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

describe("a round's cost with a large application table", () => {
  /** A statistic of `table` (pg_stat_user_tables), once this session's statistics are flushed. */
  const statistic = async (column: "seq_tup_read" | "idx_scan", table: string) => {
    await fake.db.query("SELECT pg_stat_force_next_flush()");
    await fake.db.query("SELECT 1"); // the flush happens at the end of a transaction
    const { rows } = await fake.db.query<{ n: string }>(
      `SELECT coalesce(${column}, 0)::text AS n FROM pg_stat_user_tables WHERE relname = $1`,
      [table],
    );
    return Number(rows[0]?.n);
  };
  /** Rows of `table` read by sequential scans. */
  const scanned = (table = "developers") => statistic("seq_tup_read", table);
  /** Index scans of `table`. */
  const lookups = (table: string) => statistic("idx_scan", table);

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

  it.each([
    // The queue's look-up and the developers write each hashed all of chain_stake (the step's
    // temp tables have no statistics): 1.5 ms each a round at 20,000 wallets, and growing.
    ["one chain", () => fakePonder()],
    // And the check that Ponder lacks none of the developer's folded events (find-activations.ts
    // distrust), joined to the step's temp tables with nested loops off.
    ["two chains", () => fakeOnTwoChains()],
  ])(
    "sums a block's developers' stakes through chain_stake's key on %s, not by reading every wallet's",
    async (_, make) => {
      fake = await make();
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
      expect((await scanned("chain_stake")) - before).toBeLessThan(100);
    },
  );

  /** A thousand developers, the wallets of pastEvents, whose rows were last written at `updatedAt`. */
  const thousandDevelopers = async (updatedAt: string) => {
    fake = await fakePonder();
    await fake.db.query(
      `INSERT INTO developers (wallet_address, email, updated_at)
       SELECT '0x' || lpad(to_hex(65536 + g), 40, '0'), NULL, ${updatedAt} FROM generate_series(0, 999) g`,
    );
    await fake.db.query("ANALYZE developers");
  };
  /**
   * A thousand developers who signed up just now (a bulk import): for a minute, each is also a
   * registration a step looks for (find-registrations.ts).
   */
  const signedUpJustNow = () => thousandDevelopers("now()");

  it("sums no stake twice for a thousand developers who signed up a minute ago and staked in one block", async () => {
    await signedUpJustNow();
    await pastEvents(fake, 1000, { wallets: 1000, perBlock: 1000 });
    await fake.progress({ latest: 40 });
    const before = await lookups("chain_stake");
    const { changes } = await fake.round();
    expect(changes).toHaveLength(1000);
    // Once each to add the block's stake, to queue them and to write them: the look-up for
    // registrations summed each again (4,000), though the block had put them all in the step.
    expect((await lookups("chain_stake")) - before).toBeLessThanOrEqual(3000);
  });

  it("sums a bulk step's developers' stakes once to find them, not again to write them", async () => {
    await thousandDevelopers("now() - interval '1 hour'");
    await pastEvents(fake, 2000, { wallets: 1000, perBlock: 2000 });
    await fake.progress({ latest: 40 });
    const before = await lookups("chain_stake");
    const { step, changes } = await fake.round();
    expect(changes).toHaveLength(1000);
    expect(step.kind === "stepped" && step.written.length).toBe(1000); // the step's own write
    // Once each to add the block's stake and once to find the developers: the write summed each
    // again (3,000), in the same snapshot, to the same totals.
    expect((await lookups("chain_stake")) - before).toBeLessThanOrEqual(2000);
  });

  it("sums each developer's stake once in a reconciliation, a thousand of them signed up a minute ago", async () => {
    await signedUpJustNow();
    await fake.progress({ latest: 40 });
    const before = await lookups("chain_stake");
    const { changes } = await fake.round({ reconcile: true });
    expect(changes).toEqual([]);
    // The reconciliation's look-up, which takes every developer: the look-up for registrations
    // summed each before it (2,000).
    expect((await lookups("chain_stake")) - before).toBeLessThanOrEqual(1000);
  });
  it("asks about the last minute's registrations with each wallet lowered once, not at each chain_stake row", async () => {
    fake = await fakePonder();
    // Registered in the last minute, pending, and a small chain_stake: a scan, in the plan below.
    await fake.db.query(
      `INSERT INTO developers (wallet_address, email) SELECT '0x' || lpad(to_hex(65536 + g), 40, '0'), NULL
         FROM generate_series(1, 300) g;
       INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block)
       SELECT '0x' || lpad(to_hex(16777216 + g), 40, '0'), 31337, 5, 1 FROM generate_series(1, 100) g;
       ANALYZE developers; ANALYZE stakesync.chain_stake`,
    );
    const [question] = anyRegistrations(fake.config);
    const { rows } = await fake.db.query(`EXPLAIN (VERBOSE, FORMAT JSON) ${String(question)}`);
    /** Every plan node under `node`. */
    const nodes = (node: Record<string, unknown>): Record<string, unknown>[] => [
      node,
      ...((node.Plans as Record<string, unknown>[] | undefined) ?? []).flatMap(nodes),
    ];
    const plan = (rows[0] as { "QUERY PLAN": { Plan: Record<string, unknown> }[] })["QUERY PLAN"][0]?.Plan ?? {};
    const stakes = nodes(plan).filter((n) => n["Relation Name"] === "chain_stake");
    expect(stakes.length).toBeGreaterThan(0);
    // lower() in the look-up's condition ran once per row it passed: 15 ms a round at 337
    // registrations and 114 wallets with stake (the bench's realtime minute), 3 ms now. EXPLAIN
    // shows a value computed once per developer, a parameter of the look-up, in parentheses:
    // `cs.wallet = (lower(d.wallet_address))`.
    for (const n of stakes) expect(JSON.stringify([n.Filter, n["Index Cond"]])).not.toContain("= lower(");
  });
});

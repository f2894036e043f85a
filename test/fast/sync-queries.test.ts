/**
 * The queries a sync round sends and the plans it keeps, with a large application table, on
 * fabricated Ponder tables (what it reads: sync-cost.test.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Fake, fakePonder, pastEvents, SCHEMA, USDC, wallet } from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

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

describe("a round's queries and plans with a large application table", () => {
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
    // Whether the round diffed: its window is left in the step's temp table until the next BEGIN
    // empties it (the diff's text is sent once per connection: then it is prepared, step.ts).
    const diffed = async () => (await fake.db.query("SELECT 1 FROM sync_window")).rows.length > 0;
    await fake.progress({ latest: 13, safe: 0 }); // a new block, without events
    const full = await queries(11);
    expect(await diffed()).toBe(true);
    const quiet = await queries(11); // nothing new
    expect(await diffed()).toBe(false);
    // As many round trips as a block's (a block's step sends its diff with the rest and its
    // COMMIT), but without the diff's work on the server.
    expect(quiet.length).toBeLessThanOrEqual(full.length);
    // The fake's read of the head, BEGIN with the cursors and the progress, the two questions
    // with the pending list and the COMMIT.
    expect(quiet.length).toBeLessThanOrEqual(3);
    // Ponder behind the cursor (a lagging provider): its own events are not missing from the
    // ledger, so the same two questions answer, and nothing is taken back.
    await fake.progress({ latest: 10, safe: 0 });
    const behind = await queries(11);
    expect(await diffed()).toBe(false);
    expect(behind.length).toBeLessThanOrEqual(3);
    expect(await fake.developer(wallet(0x43))).toMatchObject({ stake_amount: "5.000000" });
  });

  it("sends a block's first activation, its audit and welcome job included, in 3 queries", async () => {
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
    // step's, Ponder's progress with the BEGIN, the claim with the write, the write in the step's
    // own commit, the diff with the rest (31 queries, then 19, then 12, then 10, then 5, then 4,
    // now 3). One is the fake's own read of the head: the sidecar's are the BEGIN with the cursors
    // and the progress, and the diff with the rest of the step, its developers write included
    // (write-in-step.ts), and its COMMIT.
    expect(sent).toBeLessThanOrEqual(3);
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
      // A block's few events: the look-ups' wallets computed by the server, in the step's last
      // round trip, which carries its diff (a plain block's, step.ts). More: the server stops that
      // round trip after the diff, and the step runs again the usual way, its look-ups the
      // catch-up's, and its COMMIT without them.
      const committing = sent.filter((q) => /\bCOMMIT$/.test(q.trim()) && q.includes("stakesync.cursor"));
      expect(committing.at(-1)?.includes("ARRAY(SELECT wallet FROM affected)")).toBe(others === 0);
      expect(committing).toHaveLength(others === 0 ? 1 : 2);
      const row = await fake.developer(w);
      expect(row).toMatchObject({ status: "active", stake_amount: "11.000000" });
      expect(row?.staked_at?.getTime()).toBe((1_700_000_000 + 11 * 12) * 1000);
    }
  });

  it("steps a backlog of busy blocks the usual way once one had more than 1,000 events, not each twice", async () => {
    fake = await fakePonder();
    // As for a role named stakesync: the server then names the stop's function without its schema.
    await fake.db.query("SET search_path = stakesync, public");
    const busy = async (from: number, block: number) => {
      await fake.db.query(
        `INSERT INTO ${SCHEMA}.stake_event
         SELECT lpad((${block} * 10000 + g)::text, 75, '0'), 31337, '0x' || lpad(to_hex(${from} + g), 40, '0'),
                'staked', ${USDC}, ${block}, 1700000000 + ${block} * 12, '0x' || lpad(to_hex(${from} + g), 64, '0'), 0
           FROM generate_series(1, 1100) g`,
      );
      await fake.progress({ latest: block + 2, safe: 0, finalized: 0 });
      return fake.round();
    };
    await fake.progress({ latest: 11, safe: 0, finalized: 0 });
    await fake.round();
    expect((await busy(0, 10)).step).toMatchObject({ kind: "stepped", plainStopped: "events" });
    const next = await busy(2000, 11);
    expect(next.step).toMatchObject({ kind: "stepped", chains: [{ to: 11, added: 1100 }] });
    expect(next.step.kind === "stepped" && next.step.plainStopped).toBeUndefined();
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

  it("empties the step's temp tables row by row after a block's step, and truncates them once a step left them large", async () => {
    fake = await fakePonder();
    const w = wallet(0x4a);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round(); // a new connection's first step truncates
    const pages = async () =>
      Number((await fake.db.query<{ n: string }>("SELECT pg_relation_size('pg_temp.stale')::text AS n")).rows[0]?.n);
    const truncates = async () => (await sending(fake, () => fake.round())).sent.some((q) => q.includes("TRUNCATE"));
    // A round between blocks after a block's step, and after itself: rows deleted, no file truncated.
    expect(await truncates()).toBe(false);
    expect(await truncates()).toBe(false);
    // A step that left them large (as thousands of registrations would): the next step deletes
    // the rows and sees the size, and the one after truncates.
    await fake.db.query("INSERT INTO stale SELECT 'x' || g, false, g FROM generate_series(1, 50000) g");
    expect(await pages()).toBeGreaterThan(1024 * 1024);
    expect(await truncates()).toBe(false);
    expect(await pages()).toBeGreaterThan(1024 * 1024); // dead rows, every page kept
    expect(await truncates()).toBe(true);
    expect(await pages()).toBe(0);
    expect(await truncates()).toBe(false);
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

/** The sidecar's HTTP routes through Hono's app.request(), on a fabricated database. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { freshBlock, watchHeads } from "../../sidecar/chain-heads";
import { createPools } from "../../sidecar/db/pools";
import type { createApp } from "../../sidecar/http/app";
import { IndexerWatch } from "../../sidecar/indexer-watch";
import { createLogger } from "../../sidecar/log";
import { ERROR_KINDS, observeStatus, RULES } from "../../sidecar/metrics";
import { countDevelopers, readStatus } from "../../sidecar/status";
import { LEADERSHIP_LOST, WRITE_WAITS } from "../../sidecar/sync/loop";
import { DevelopersBusy } from "../../sidecar/sync/sql/lock-developers";
import { CHAIN, type Fake, fakePonder, SCHEMA, sidecarParts, wallet } from "./ponder-fake";

const TOKEN = "fast-tier-admin-token";
let fake: Fake;
let pool: pg.Pool;
let app: ReturnType<typeof createApp>;
let indexerDown: string | null = null;

beforeAll(async () => {
  fake = await fakePonder({ ADMIN_TOKEN: TOKEN, MAX_LAG_BLOCKS: "5" });
  pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  app = sidecarParts(fake.config).appOn(pool, { down: () => indexerDown });
  const w = wallet(0xa1);
  await fake.register(w, "someone@example.test");
  for (const i of [1, 2, 3]) {
    await fake.index([{ developer: w, amount: BigInt(i) * 1_000_000n, block: 10 + i }], 12 + i);
    await fake.round(); // one audit row each
  }
});
afterAll(async () => {
  await pool?.end();
  await fake?.close();
});

describe("public routes", () => {
  it("answer health, readiness with a reason, and status without error text", async () => {
    expect((await app.request("/health")).status).toBe(200);
    const ready = await app.request("/ready");
    expect(ready.status).toBe(503); // head 30, synced 13: 17 behind, more than MAX_LAG_BLOCKS
    expect(await ready.json()).toEqual({ ready: false, reason: "chain 31337: 17 blocks behind (max 5)" });
    const status = (await (await app.request("/status")).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ role: "standby", developers: { queued: 0, refused: 0 }, outbox: { pending: 1 } });
  });

  it("page a developer's audit trail and never show the email", async () => {
    const w = wallet(0xa1);
    type Page = { audit: { id: string }[]; nextAfter: string | null; status: string };
    const first = (await (await app.request(`/developers/${w}?limit=2`)).json()) as Page;
    expect(first.audit).toHaveLength(2);
    expect(first.nextAfter).toBe(first.audit[1]?.id);
    const rest = (await (await app.request(`/developers/${w}?after=${first.nextAfter}`)).json()) as Page;
    expect(rest.audit).toHaveLength(1);
    expect(rest.nextAfter).toBeNull();
    expect(JSON.stringify([first, rest])).not.toContain("@");
    expect((await app.request(`/developers/${w}?limit=501`)).status).toBe(400);
    expect((await app.request("/developers/0xnothex")).status).toBe(400);
    expect((await app.request(`/developers/${wallet(0xdead)}`)).status).toBe(404);
  });
});

describe("the sidecar's own head polls failing", () => {
  it("make /ready 503 once the last head is older than 10 s, though the last lag was small", async () => {
    // Synced at 13 with the head at 15: ready. Then every RPC URL fails: the head stays 15, and
    // with it the lag shown (an outage of the provider Ponder shares: nothing moves at all).
    const parts = sidecarParts(fake.config, { head: 15 });
    const own = parts.appOn(pool);
    expect((await own.request("/ready")).status).toBe(200);
    expect(await (await own.request("/metrics")).text()).toMatch(/^stakesync_lag_blocks\{chain_id="31337"\} 2$/m);
    parts.heads.set(CHAIN, { block: 15, at: Date.now() - 11_000 });
    const ready = await own.request("/ready");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reason: `chain ${CHAIN}: head unknown (RPC unreachable)` });
    // No lag on /metrics either, rather than the last one (2 blocks).
    expect(await (await own.request("/metrics")).text()).not.toMatch(/^stakesync_lag_blocks\{/m);
  });
});

/**
 * The sidecar's head polls (chain-heads.ts, every 100 ms) against a node of the test's own, whose
 * answer to each eth_blockNumber is `next()`, with HEAD_STILL_MS `headStillMs`.
 */
async function headsOf(headStillMs: number, next: () => number | null | Promise<number>) {
  const node = http.createServer(async (_, res) => {
    const block = await next();
    res.setHeader("content-type", "application/json");
    // null: the node fails the request.
    const answer =
      block === null ? { error: { code: -32000, message: "down" } } : { result: `0x${block.toString(16)}` };
    res.end(JSON.stringify({ jsonrpc: "2.0", id: 1, ...answer }));
  });
  await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(node.address() as AddressInfo).port}`;
  const chains = fake.config.chains.map((c) => ({ ...c, rpcUrls: [url], headStillMs }));
  const watch = watchHeads(chains, createLogger("silent"), () => undefined, 100);
  return {
    watch,
    stop: () => {
      watch.stop();
      node.close();
    },
  };
}

describe("a provider stuck on an old block", () => {
  it("makes /ready 503 once the polled head has stood still past HEAD_STILL_MS, though it answers", async () => {
    const config = { ...fake.config, chains: fake.config.chains.map((c) => ({ ...c, headStillMs: 60_000 })) };
    const parts = sidecarParts(config, { head: 15 });
    const own = parts.appOn(pool);
    // Polled just now, moved a moment ago: ready.
    parts.heads.set(CHAIN, { block: 15, at: Date.now(), movedAt: Date.now() - 5_000 });
    expect((await own.request("/ready")).status).toBe(200);
    // Polled just now, but block 15 for 90 s: a node out of sync, which Ponder reads too.
    parts.heads.set(CHAIN, { block: 15, at: Date.now(), movedAt: Date.now() - 90_000 });
    const ready = await own.request("/ready");
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(
      /^chain 31337: head unknown \(it has not moved for 9\d s: HEAD_STILL_MS\)$/,
    );
    // Unset, it never counts: a chain that mines on demand stands still for as long as it likes.
    const unset = sidecarParts(fake.config, { head: 15 });
    unset.heads.set(CHAIN, { block: 15, at: Date.now(), movedAt: Date.now() - 90_000 });
    expect((await unset.appOn(pool).request("/ready")).status).toBe(200);
  });

  it("forgets, once HEAD_STILL_MS has passed, one answer far ahead of the chain", async () => {
    // A balancer member on another network answers once with a far block; the chain goes on.
    let block = 7;
    let first = true;
    const { watch, stop } = await headsOf(1000, () => {
      const answer = first ? 1_000_000 : ++block;
      first = false;
      return answer;
    });
    try {
      // Before, the far block stayed the one to pass: the head "stood still" until the chain
      // reached it (never, on this chain), /ready 503 and rpc_failing for good.
      await waitFor(
        "a head that moves again",
        () => block > 20 && freshBlock(watch.heads.get(CHAIN), Date.now(), 1000) !== null,
        { timeoutMs: 20_000, intervalMs: 50 },
      );
    } finally {
      stop();
    }
  });

  it("keeps a stuck head still across an outage longer than HEAD_STILL_MS", async () => {
    let down = false;
    const { watch, stop } = await headsOf(1000, () => (down ? null : 7));
    const still = () => freshBlock(watch.heads.get(CHAIN), Date.now(), 1000) === null;
    try {
      await waitFor("block 7 standing still", () => watch.heads.get(CHAIN) !== undefined && still(), {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      const movedAt = watch.heads.get(CHAIN)?.movedAt;
      down = true;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      down = false;
      const back = Date.now();
      await waitFor("a poll after the outage", () => (watch.heads.get(CHAIN)?.at ?? 0) > back, {
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      // Before: every sample aged out, the stuck 7 "moved", and /ready went back to 200.
      expect(watch.heads.get(CHAIN)?.movedAt).toBe(movedAt);
      expect(still()).toBe(true);
    } finally {
      stop();
    }
  });

  it("notes when the polled head last went past its highest block", async () => {
    // A node that answers block 7, then 6 (a balancer's other node, stuck lower), 7, and holds
    // its fourth answer, 8, until the test lets it go.
    const answers = [7, 6, 7, 8];
    let served = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { watch, stop } = await headsOf(60_000, async () => {
      const block = answers.shift() ?? 8;
      if (served === 3) await released;
      served += 1;
      return block;
    });
    try {
      await watch.ready;
      const first = watch.heads.get(CHAIN);
      await waitFor("blocks 6 and 7 again", () => served === 3 && watch.heads.get(CHAIN)?.block === 7, {
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      expect(watch.heads.get(CHAIN)).toMatchObject({ block: 7, movedAt: first?.movedAt });
      release();
      await waitFor("block 8", () => watch.heads.get(CHAIN)?.block === 8, { timeoutMs: 10_000, intervalMs: 10 });
      expect(watch.heads.get(CHAIN)?.movedAt).toBeGreaterThan(first?.movedAt ?? Number.POSITIVE_INFINITY);
    } finally {
      release();
      stop();
    }
  });
});

describe("a developers write that keeps failing", () => {
  it("makes /ready 503 once the leader has noted the write failing for 120 s, though the cursor is current; a row held as long is no failure", async () => {
    const parts = sidecarParts(fake.config, { head: 15 });
    const own = parts.appOn(pool);
    try {
      // An application transaction holds a queued developer's row for minutes: it waits, and
      // nothing failed (before, a queue entry that old made /ready 503 on every sidecar).
      await fake.db.query(
        "INSERT INTO stakesync.developer_queue (wallet, reason, queued_at) VALUES ($1, 'stake', now() - interval '3 minutes')",
        [wallet(0xa7)],
      );
      expect((await own.request("/ready")).status).toBe(200);
      // The leader noted the write failing a moment ago: the next try may mend it.
      await fake.db.query(
        "INSERT INTO stakesync.developers_write_failing (since) VALUES (now() - interval '5 seconds')",
      );
      expect((await own.request("/ready")).status).toBe(200);
      await fake.db.query("UPDATE stakesync.developers_write_failing SET since = now() - interval '3 minutes'");
      const ready = await own.request("/ready");
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(
        /^the developers write has failed for 1[89]\d s \(the leader's log says why\); synced stakes wait in the queue$/,
      );
      // Its last failed try 10 minutes ago: a row no leader of this version cleared (a rollback,
      // then this version again beside an older leader) is stale, not a day-long failure.
      await fake.db.query(
        "UPDATE stakesync.developers_write_failing SET since = now() - interval '1 day', failed_at = now() - interval '10 minutes'",
      );
      expect((await own.request("/ready")).status).toBe(200);
    } finally {
      await fake.db.query("DELETE FROM stakesync.developer_queue; DELETE FROM stakesync.developers_write_failing");
    }
  });
});

describe("indexer down", () => {
  it("makes /ready 503 naming Ponder, and /status and the page say so", async () => {
    indexerDown = "http://127.0.0.1:42069/health unreachable";
    try {
      const ready = await app.request("/ready");
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ ready: false, reason: `indexer down: ${indexerDown}` });
      expect(await (await app.request("/status")).json()).toMatchObject({ indexer: indexerDown });
      expect(await (await app.request("/metrics")).text()).toMatch(/^stakesync_indexer_up 0$/m);
    } finally {
      indexerDown = null;
    }
    expect(await (await app.request("/metrics")).text()).toMatch(/^stakesync_indexer_up 1$/m);
  });

  it("counts only once the problem has lasted INDEXER_DOWN_AFTER_MS (Ponder may still be starting)", async () => {
    const watch = new IndexerWatch(
      { ponderUrl: "http://127.0.0.1:1", ponderSchema: SCHEMA, indexerDownAfterMs: 30_000 },
      pool,
    );
    const t0 = Date.now();
    await watch.observe(t0);
    expect(watch.down(t0 + 29_999)).toBeNull();
    await watch.observe(t0 + 10_000); // still failing: the first sighting counts
    expect(watch.down(t0 + 30_000)).toBe("http://127.0.0.1:1/health unreachable");
  });

  it("names a heartbeat it cannot read by its SQLSTATE, not by the database's message (it is /ready's reason)", async () => {
    const ponder = http.createServer((_, res) => res.end("ok")).listen(0);
    await new Promise((resolve) => ponder.once("listening", resolve));
    try {
      const watch = new IndexerWatch(
        {
          ponderUrl: `http://127.0.0.1:${(ponder.address() as AddressInfo).port}`,
          ponderSchema: "no_such_schema",
          indexerDownAfterMs: 0,
        },
        pool,
      );
      await watch.observe();
      expect(watch.down()).toBe("cannot read Ponder's heartbeat (SQLSTATE 42P01)");
    } finally {
      ponder.close();
    }
  });
});

describe("status page", () => {
  it("shows developers by status as /status counts them, UTC times, 'block' in the singular, and unconfigured SMTP", async () => {
    const status = (await (await app.request("/status")).json()) as {
      developers: { byStatus: Record<string, number> };
      chains: { head: number; indexed: number }[];
    };
    expect(status.developers.byStatus).toEqual({ active: 1 });
    for (const chain of status.chains) expect(chain.head).toBeGreaterThanOrEqual(chain.indexed);
    const html = await (await app.request("/")).text();
    expect(html).toMatch(/data-status="active">active <b class="num">1<\/b>/);
    expect(html).toContain("not configured (SMTP_URL and MAIL_FROM unset): 1 pending");
    expect(html).not.toMatch(/\b1 blocks\b/);
    expect(html).not.toContain("@");
  });

  it("counts developers by status, a status of the application's only while a row has it", async () => {
    const parts = sidecarParts(fake.config);
    const observe = async (byStatus: Record<string, number>) => {
      const status = await readStatus(pool, fake.config, parts.heads, null, parts.loop.state);
      observeStatus(parts.metrics, status, byStatus, parts.heads);
      return (await parts.metrics.developersByStatus.get()).values.map((v) => `${v.labels.status} ${v.value}`).sort();
    };
    // The application's own status (its table, its values), then no row has it any more.
    expect(await observe({ active: 1, suspended: 3 })).toEqual(["active 1", "inactive 0", "pending 0", "suspended 3"]);
    // Gone, not its last count (it read 3 until the sidecar restarted).
    expect(await observe({ active: 1 })).toEqual(["active 1", "inactive 0", "pending 0"]);
  });

  it("names only the application's few most common plain statuses; free text and the rest count as 'other'", async () => {
    // "constructor": a key of every plain object; read as a count, it broke /metrics.
    const statuses = [
      "suspended",
      "trial",
      "trial",
      "banned",
      "vip",
      "beta",
      "alpha",
      "suspended: ticket 4711",
      "constructor",
    ];
    const wallets = statuses.map((_, i) => wallet(0xd00 + i));
    const email = "banned by ops@corp.example";
    // An adopted table: the application's statuses, with no check of the sidecar's.
    const { rows: check } = await fake.db.query<{ def: string }>(
      "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'developers_status_check'",
    );
    await fake.db.query("ALTER TABLE developers DROP CONSTRAINT developers_status_check");
    await fake.db.query(
      `INSERT INTO developers (wallet_address, status) SELECT * FROM unnest($1::text[], $2::text[])`,
      [
        [...wallets, wallet(0xdff)],
        [...statuses, email],
      ],
    );
    try {
      const counts = await countDevelopers(pool, fake.config);
      // Before: each value its own key here and its own series on /metrics, the address too.
      expect({ ...counts }).toEqual({ active: 1, trial: 2, alpha: 1, banned: 1, beta: 1, constructor: 1, other: 4 });
      expect((await app.request("/metrics")).status).toBe(200);
      expect(JSON.stringify(counts)).not.toContain("@");
    } finally {
      await fake.db.query("DELETE FROM developers WHERE wallet_address = ANY($1)", [[...wallets, wallet(0xdff)]]);
      await fake.db.query(`ALTER TABLE developers ADD CONSTRAINT developers_status_check ${check[0]?.def}`);
    }
  });

  it("shows an application's free-text status, current or in the audit, as 'other' on the public routes, never an address in it", async () => {
    const w = wallet(0xd80);
    const free = "suspended: contact dave@example.test";
    const { rows: check } = await fake.db.query<{ def: string }>(
      "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'developers_status_check'",
    );
    await fake.db.query("ALTER TABLE developers DROP CONSTRAINT developers_status_check");
    try {
      await fake.db.query("INSERT INTO developers (wallet_address, status) VALUES ($1, $2)", [w, free]);
      await fake.db.query(
        "INSERT INTO stakesync.chain_stake (wallet, chain_id, amount, last_block) VALUES ($1, $2, 0, 1)",
        [w, CHAIN],
      );
      const before = (await (await app.request(`/developers/${w}`)).json()) as { status: string };
      expect(before.status).toBe("other");
      // The sync rewrites the row; the audit keeps the old status, and the page shows it.
      await fake.db.query(
        `INSERT INTO stakesync.audit (wallet, old_status, new_status, old_amount, new_amount, reason)
         VALUES ($1, $2, 'active', 0, 5, 'stake')`,
        [w, free],
      );
      const after = await (await app.request(`/developers/${w}`)).text();
      const page = await (await app.request("/")).text();
      expect(after).toContain('"from":{"status":"other"');
      expect(page).toContain("other 0 → active 5");
      for (const text of [JSON.stringify(before), after, page]) expect(text).not.toContain("@");
    } finally {
      await fake.db.query("DELETE FROM stakesync.audit WHERE wallet = $1", [w]);
      await fake.db.query("DELETE FROM stakesync.chain_stake WHERE wallet = $1", [w]);
      await fake.db.query("DELETE FROM developers WHERE wallet_address = $1", [w]);
      await fake.db.query(`ALTER TABLE developers ADD CONSTRAINT developers_status_check ${check[0]?.def}`);
    }
  });

  it("keeps the loop's own gauges current on /metrics when the status read fails, and says that the others are stale", async () => {
    const parts = sidecarParts(fake.config);
    const own = new pg.Pool({ connectionString: fake.url, max: 1 });
    const app = parts.appOn(own);
    parts.loop.state.consecutiveErrors = 7;
    const scrape = async () => await (await app.request("/metrics")).text();
    expect(await scrape()).toMatch(/^stakesync_consecutive_sync_errors 7$/m);
    expect(await scrape()).toMatch(/^stakesync_status_read_ok 1$/m);
    // The database goes from this sidecar; its loop stood down, its count back to 0.
    await own.end();
    parts.loop.state.consecutiveErrors = 0;
    const text = await scrape();
    // Before: 7, the last status read's, keeping StakesyncSyncErrors firing after another leader recovered.
    expect(text).toMatch(/^stakesync_consecutive_sync_errors 0$/m);
    expect(text).toMatch(/^stakesync_status_read_ok 0$/m);
  });

  it("reloads itself every 3 s unless ?refresh= says otherwise, and refuses a refresh that is not whole seconds", async () => {
    expect(await (await app.request("/")).text()).toContain('<meta http-equiv="refresh" content="3"/>');
    expect(await (await app.request("/?refresh=30")).text()).toContain('<meta http-equiv="refresh" content="30"/>');
    const still = await app.request("/?refresh=0");
    expect(still.status).toBe(200);
    expect(await still.text()).not.toContain("http-equiv");
    for (const bad of ["abc", "-1", "1.5", "99999"]) {
      const response = await app.request(`/?refresh=${bad}`);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain("refresh must be a whole number of seconds");
    }
  });
});

describe("metrics", () => {
  it("start every counter at 0 per chain and error kind, with Node's process metrics", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toMatch(/^stakesync_events_synced_total\{chain_id="31337"\} 0$/m);
    for (const kind of ERROR_KINDS) {
      expect(text).toMatch(new RegExp(`^stakesync_sync_errors_total\\{kind="${kind}"\\} 0$`, "m"));
    }
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^stakesync_outbox_pending 1$/m);
    for (const rule of RULES) expect(text).toMatch(new RegExp(`^stakesync_alert_firing\\{rule="${rule}"\\} 0$`, "m"));
    // Raised ones too: without a 0, increase() missed each rule's first alert after a restart.
    for (const rule of RULES) expect(text).toMatch(new RegExp(`^stakesync_alerts_total\\{rule="${rule}"\\} 0$`, "m"));
    expect(text).toMatch(/^stakesync_developers\{status="active"\} 1$/m);
    expect(text).toMatch(/^stakesync_head_block\{chain_id="31337"\} 30$/m);
  });
});

describe("admin routes", () => {
  it("need the bearer token and answer 400/404 on bad ids", async () => {
    expect((await app.request("/admin/dead-letters")).status).toBe(401);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    expect(await (await app.request("/admin/dead-letters", auth)).json()).toEqual({ deadLetters: [], nextAfter: null });
    // The scheme's name in any case; the token itself exactly.
    const lower = { headers: { authorization: `bearer ${TOKEN}` } };
    expect((await app.request("/admin/dead-letters", lower)).status).toBe(200);
    const wrongCase = { headers: { authorization: `Bearer ${TOKEN.toUpperCase()}` } };
    expect((await app.request("/admin/dead-letters", wrongCase)).status).toBe(401);
    expect((await app.request("/admin/dead-letters/abc/retry", { ...auth, method: "POST" })).status).toBe(400);
    expect((await app.request("/admin/dead-letters/424242/retry", { ...auth, method: "POST" })).status).toBe(404);
    // A job that is no dead letter (retried already by another operator): 404, saying what it is.
    const [job] = (await fake.db.query<{ id: string }>("SELECT id::text FROM stakesync.outbox WHERE state = 'pending'"))
      .rows;
    const pending = await app.request(`/admin/dead-letters/${job?.id}/retry`, { ...auth, method: "POST" });
    expect(pending.status).toBe(404);
    expect(await pending.json()).toEqual({
      error: `${job?.id} is not a dead letter: it is pending (retried already?)`,
    });
    // Listed in id order, as numbers (9 before 10).
    await fake.db.query(
      `INSERT INTO stakesync.developer_queue (wallet, id, reason, state) VALUES ('0xa', 10, 'stake', 'dead'), ('0xb', 9, 'stake', 'dead')`,
    );
    type Listed = { deadLetters: { id: string }[]; nextAfter: string | null };
    const listed = (await (await app.request("/admin/dead-letters", auth)).json()) as Listed;
    expect(listed.deadLetters.map((d) => d.id)).toEqual(["9", "10"]);
    await fake.db.query("DELETE FROM stakesync.developer_queue WHERE id IN (9, 10)");
    // A page at a time: a trigger refusing every row makes thousands, and one answer of them all
    // could take the leader's memory.
    await fake.db.query(
      `INSERT INTO stakesync.developer_queue (wallet, id, reason, state)
       SELECT '0x' || to_hex(n), 100000 + n, 'stake', 'dead' FROM generate_series(1, 1200) n`,
    );
    try {
      const first = (await (await app.request("/admin/dead-letters", auth)).json()) as Listed;
      expect(first.deadLetters).toHaveLength(100);
      const ids: string[] = [];
      for (let after: string | null = "0"; after !== null; ) {
        const page = (await (await app.request(`/admin/dead-letters?limit=500&after=${after}`, auth)).json()) as Listed;
        ids.push(...page.deadLetters.map((d) => d.id));
        after = page.nextAfter;
      }
      expect(ids).toHaveLength(1200);
      expect(new Set(ids).size).toBe(1200);
      expect((await app.request("/admin/dead-letters?limit=501", auth)).status).toBe(400);
      expect((await app.request("/admin/dead-letters?after=x", auth)).status).toBe(400);
    } finally {
      await fake.db.query("DELETE FROM stakesync.developer_queue WHERE id > 100000");
    }
    expect((await app.request("/admin/reconcile", { ...auth, method: "POST" })).status).toBe(409); // standby
  });
});

describe("error texts stored before a fix to their redaction", () => {
  it("are redacted again as the admin routes read them", async () => {
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const w = wallet(0xe02);
    // Written by an older version whose redaction missed such addresses.
    const { rows } = await fake.db.query<{ id: string }>(
      `INSERT INTO stakesync.outbox (kind, wallet, state, attempts, last_error)
       VALUES ('welcome_email', $1, 'dead', 10, '550 5.1.1 <"dave smith"@example.test>: unknown; <dave@[192.0.2.1]> too')
       RETURNING id::text`,
      [w],
    );
    await fake.db.query(
      `INSERT INTO stakesync.developer_queue (wallet, id, reason, state, last_error)
       VALUES ($1, 4242, 'stake', 'dead', 'P0001: refused "dave smith"@example.test')`,
      [w],
    );
    try {
      const dead = await (await app.request("/admin/dead-letters", auth)).text();
      const jobs = await (await app.request(`/admin/jobs/${w}`, auth)).text();
      expect(dead).toContain("550 5.1.1 <<address>>: unknown; <<address>> too");
      expect(dead).toContain("P0001: refused <address>");
      expect(jobs).toContain("550 5.1.1 <<address>>: unknown; <<address>> too");
      expect(`${dead}${jobs}`).not.toMatch(/dave|192\.0\.2\.1/);
    } finally {
      await fake.db.query("DELETE FROM stakesync.outbox WHERE id = ANY($1::bigint[])", [rows.map((r) => r.id)]);
      await fake.db.query("DELETE FROM stakesync.developer_queue WHERE id = 4242");
    }
  });
});

describe("POST /admin/dead-letters/:id/discard", () => {
  it("gives up on a dead welcome email (skipped, discarded), which clears dead_letter; refuses a refused developers row, and says what any other id is", async () => {
    const auth = { headers: { authorization: `Bearer ${TOKEN}` }, method: "POST" };
    const w = wallet(0xe01);
    const { rows } = await fake.db.query<{ id: string }>(
      `INSERT INTO stakesync.outbox (kind, wallet, state, attempts, last_error)
       VALUES ('welcome_email', $1, 'dead', 10, '550 mailbox unavailable') RETURNING id::text`,
      [w],
    );
    const id = rows[0]?.id;
    await fake.db.query(
      "INSERT INTO stakesync.developer_queue (wallet, id, reason, state) VALUES ($1, 777, 'stake', 'dead')",
      [wallet(0xe02)],
    );
    try {
      const status = async () => ((await (await app.request("/status")).json()) as { outbox: { dead: number } }).outbox;
      expect((await status()).dead).toBe(1);
      // Before: no way out but SQL; retried, it died again, and dead_letter paged on for good.
      const discarded = await app.request(`/admin/dead-letters/${id}/discard`, auth);
      expect(discarded.status).toBe(200);
      expect(await discarded.json()).toEqual({ id, state: "skipped", skipReason: "discarded" });
      expect((await status()).dead).toBe(0);
      const jobs = (await (await app.request(`/admin/jobs/${w}`, { headers: auth.headers })).json()) as {
        jobs: { skipReason: string }[];
      };
      expect(jobs.jobs.map((j) => j.skipReason)).toEqual(["discarded"]);
      // Again: already done.
      const again = await app.request(`/admin/dead-letters/${id}/discard`, auth);
      expect([again.status, await again.json()]).toEqual([
        404,
        { error: `${id} is not a dead letter: it is skipped (discarded or retried already?)` },
      ]);
      // A developers row must follow the chain: never discarded.
      const row = await app.request("/admin/dead-letters/777/discard", auth);
      expect(row.status).toBe(409);
      expect(((await row.json()) as { error: string }).error).toMatch(/^777 is a developers row the database refused/);
      expect((await app.request("/admin/dead-letters/x/discard", auth)).status).toBe(400);
    } finally {
      await fake.db.query("DELETE FROM stakesync.outbox WHERE wallet = $1", [w]);
      await fake.db.query("DELETE FROM stakesync.developer_queue WHERE id = 777");
    }
  });
});

describe("a standby's /status and status page", () => {
  it("show the alerts the leader has firing, not 'none firing'", async () => {
    const parts = sidecarParts(fake.config);
    const standby = parts.appOn(pool);
    expect(parts.loop.state.role).toBe("standby");
    await fake.db.query(
      `INSERT INTO stakesync.alert_firing (rule, severity, text, sent_at)
       VALUES ('consecutive_errors', 'critical', '5 consecutive sync errors; last: sync', '2026-12-07T01:00:00Z')`,
    );
    try {
      const status = (await (await standby.request("/status")).json()) as { alerts: unknown[] };
      // Before: [], its own Alerts, which a standby clears at each tick.
      expect(status.alerts).toEqual([
        {
          rule: "consecutive_errors",
          severity: "critical",
          text: "5 consecutive sync errors; last: sync",
          since: "2026-12-07T01:00:00.000Z",
        },
      ]);
      expect(await (await standby.request("/?refresh=0")).text()).toContain("5 consecutive sync errors; last: sync");
    } finally {
      await fake.db.query("DELETE FROM stakesync.alert_firing WHERE rule = 'consecutive_errors'");
    }
  });
});

describe("a leader whose role may not make Ponder's commits durable", () => {
  it("names the schema on /status and the page, and counts it on /metrics, while it lasts", async () => {
    const parts = sidecarParts(fake.config);
    const leader = parts.appOn(pool);
    const scrape = async () => await (await leader.request("/metrics")).text();
    const status = async () => (await (await leader.request("/status")).json()) as { ponderNotDurable: string[] };
    expect((await status()).ponderNotDurable).toEqual([]);
    expect(await scrape()).toMatch(/^stakesync_ponder_not_durable 0$/m);
    parts.loop.state.role = "leader";
    parts.loop.state.ponderNotDurable = [SCHEMA];
    expect((await status()).ponderNotDurable).toEqual([SCHEMA]);
    expect(await scrape()).toMatch(/^stakesync_ponder_not_durable 1$/m);
    expect(await (await leader.request("/?refresh=0")).text()).toContain(`commits are not durable in ${SCHEMA}`);
    // Granted since: the next try made them durable.
    parts.loop.state.ponderNotDurable = [];
    expect(await scrape()).toMatch(/^stakesync_ponder_not_durable 0$/m);
    expect(await (await leader.request("/?refresh=0")).text()).not.toContain("not durable");
  });
});

describe("POST /admin/reconcile that does not get done", () => {
  it("says why: 409 when this sidecar stood down, 503 with Retry-After for what to wait out, instead of a bare 500", async () => {
    const parts = sidecarParts(fake.config);
    const own = parts.appOn(pool);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` }, method: "POST" };
    parts.loop.state.role = "leader";
    const answer = async (error: unknown) => {
      parts.loop.requestReconcile = () => Promise.reject(error);
      const response = await own.request("/admin/reconcile", auth);
      return [
        response.status,
        response.headers.get("retry-after"),
        ((await response.json()) as { error: string }).error,
      ];
    };
    expect(await answer(new Error(LEADERSHIP_LOST))).toEqual([
      409,
      null,
      "this sidecar stood down before the reconciliation ran; ask the leader",
    ]);
    const later = "the reconciliation runs once the sync goes on; ask again to see its outcome";
    expect(await answer(new DevelopersBusy(new Error("canceling statement due to statement timeout")))).toEqual([
      503,
      "10",
      `the developers table is held by another session's lock (an application's migration?): ${later}`,
    ]);
    expect((await answer(new Error(WRITE_WAITS)))[0]).toBe(503);
    expect((await answer(Object.assign(new Error("lock timeout"), { code: "55P03" })))[2]).toMatch(/^Ponder's tables/);
    expect((await answer(Object.assign(new Error("terminating connection"), { code: "57P01" })))[2]).toBe(
      `the database cannot be reached now: ${later}`,
    );
    // What the operator cannot wait out: still 500, and the error text (a trigger's, say) not in it.
    expect(await answer(new Error("a trigger of dave@example.test refused"))).toEqual([
      500,
      null,
      "the reconciliation's round failed; see the sidecar's log. It runs again at the next round",
    ]);
  });
});

describe("the sidecar's own pools, while an application migration holds developers", () => {
  it("answer /ready with its own reason however many look-ups wait, and /status and / without the counts never read yet", async () => {
    const { log, appOn } = sidecarParts(fake.config);
    const pools = createPools(fake.config, log);
    // A sidecar just started: nothing read yet to answer with.
    const own = appOn(pools.httpPool, undefined, pools.probePool);
    const migration = new pg.Client({ connectionString: fake.url });
    await migration.connect();
    try {
      await migration.query("BEGIN; LOCK TABLE developers IN ACCESS EXCLUSIVE MODE");
      // Nine anonymous look-ups at once, each held a second by the lock: three at a time on the
      // HTTP pool. Before, /ready queued behind them past its 2 s wait for a connection.
      const lookups = [...Array(9)].map(() => own.request(`/developers/${wallet(0xa1)}`));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const ready = await own.request("/ready");
      expect(await ready.json()).toEqual({ ready: false, reason: "chain 31337: 17 blocks behind (max 5)" });
      await Promise.all(lookups);
      // Before, both answered 500 for as long as the migration held the table.
      const status = await own.request("/status");
      expect(status.status).toBe(200);
      expect(((await status.json()) as { developers: { byStatus: unknown } }).developers.byStatus).toBeNull();
      const page = await own.request("/?refresh=0");
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("counts not known now");
    } finally {
      await migration.end();
      await Promise.all([pools.pool.end(), pools.httpPool.end(), pools.probePool.end()]);
    }
  }, 60_000);

  it("answer /developers/:wallet with an error within seconds, and /ready and /status meanwhile", async () => {
    const { log, appOn } = sidecarParts(fake.config);
    const pools = createPools(fake.config, log);
    const own = appOn(pools.httpPool);
    expect((await own.request("/status")).status).toBe(200); // the developers' counts, read once
    const migration = new pg.Client({ connectionString: fake.url });
    await migration.connect();
    try {
      await migration.query("BEGIN; LOCK TABLE developers IN ACCESS EXCLUSIVE MODE");
      // As many look-ups as the HTTP pool has connections: each gives up on the lock (1 s)
      // instead of keeping its connection for as long as the migration.
      const lookups = await Promise.all(
        [1, 2, 3].map(async () => (await own.request(`/developers/${wallet(0xa1)}`)).status),
      );
      expect(lookups).toEqual([500, 500, 500]);
      const ready = await own.request("/ready");
      expect(await ready.json()).toEqual({ ready: false, reason: "chain 31337: 17 blocks behind (max 5)" });
      expect((await own.request("/status")).status).toBe(200);
    } finally {
      await migration.end();
      await pools.pool.end();
      await pools.httpPool.end();
    }
  });
});

/** The sidecar's HTTP routes through Hono's app.request(), on a fabricated database. */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Alerts } from "../../sidecar/effects/alerts";
import { createApp } from "../../sidecar/http/app";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import { SyncLoop } from "../../sidecar/sync/loop";
import { type Fake, fakePonder, wallet } from "./ponder-fake";

const TOKEN = "fast-tier-admin-token";
let fake: Fake;
let pool: pg.Pool;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  fake = await fakePonder({ ADMIN_TOKEN: TOKEN, MAX_LAG_BLOCKS: "5" });
  pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  const log = createLogger("error");
  const metrics = createMetrics([31337]);
  const heads = new Map([[31337, { block: 30, at: Date.now() }]]);
  const alerts = new Alerts({
    webhookUrl: undefined,
    repeatMs: 1000,
    retry: { attempts: 0, delayMs: 0 },
    log,
    metrics,
  });
  const loop = new SyncLoop(fake.config, log, metrics, heads); // never started: a standby
  app = createApp({ config: fake.config, pool, heads, loop, metrics, alerts, log });
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

describe("metrics", () => {
  it("start every counter at 0 per chain and error kind, with Node's process metrics", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toMatch(/^stakesync_events_synced_total\{chain_id="31337"\} 0$/m);
    for (const kind of ["database", "ponder", "sync", "rpc", "email", "http"]) {
      expect(text).toMatch(new RegExp(`^stakesync_sync_errors_total\\{kind="${kind}"\\} 0$`, "m"));
    }
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^stakesync_outbox_pending 1$/m);
  });
});

describe("admin routes", () => {
  it("need the bearer token and answer 400/404 on bad ids", async () => {
    expect((await app.request("/admin/dead-letters")).status).toBe(401);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    expect(await (await app.request("/admin/dead-letters", auth)).json()).toEqual({ deadLetters: [] });
    expect((await app.request("/admin/dead-letters/abc/retry", { ...auth, method: "POST" })).status).toBe(400);
    expect((await app.request("/admin/dead-letters/424242/retry", { ...auth, method: "POST" })).status).toBe(404);
    expect((await app.request("/admin/reconcile", { ...auth, method: "POST" })).status).toBe(409); // standby
  });
});

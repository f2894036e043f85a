/**
 * Alert delivery across a change of leader (sidecar/effects/alerts.ts): the rules firing are kept
 * in stakesync.alert_firing, so the next leader resolves one that cleared while it took over; the
 * rpc_failing rule's reading of Ponder's RPC error counter (sidecar/effects/monitor.ts); no
 * rule evaluated by a sidecar just back from a freeze (sidecar/effects/pause-watch.ts), nor by one
 * whose lock another took during its reads, and no write to alert_firing without the lock;
 * reorg_correction from the audit; and an alert's start kept through its repeats.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterEach, expect, it, vi } from "vitest";
import { waitFor } from "../../lib/wait";
import type { Queryable } from "../../sidecar/db/queryable";
import { Alerts, leaderFiring, type Rule, type Severity } from "../../sidecar/effects/alerts";
import { AlertMonitor, checkUnreachable } from "../../sidecar/effects/monitor";
import { PauseWatch } from "../../sidecar/effects/pause-watch";
import { startEffects } from "../../sidecar/effects/run";
import { OutboxWorker } from "../../sidecar/effects/worker";
import { IndexerWatch } from "../../sidecar/indexer-watch";
import { SERVER_START } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { createMetrics, observeStatus } from "../../sidecar/metrics";
import { announceSettings, settingsDiffer, withdrawSettings } from "../../sidecar/settings";
import { readStatus, type Status } from "../../sidecar/status";
import type { LoopState } from "../../sidecar/sync/loop";
import { startWebhook } from "../helpers/peers";
import { CHAIN, type Fake, fakePonder, leadingSession, sidecarParts, wallet } from "./ponder-fake";

let fake: Fake;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
afterEach(async () => {
  webhook?.close();
  await fake?.close();
});

/** One sidecar's alerts, as main.ts builds them. */
const sidecarAlerts = (repeatMs = 60_000) =>
  new Alerts({
    webhookUrl: webhook.url,
    repeatMs,
    retry: { attempts: 0, delayMs: 0 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
    db: fake.db,
  });
const sent = () => webhook.alerts.map((a) => `${a.rule} ${a.state}`);

/** The last leader fired `rule`, delivered and stored it, and stood down: the page it left. */
async function lastLeaderLeft(rule: Rule, severity: Severity, text: string) {
  const first = sidecarAlerts();
  await first.adopt();
  first.set(rule, true, severity, text);
  await Promise.all([first.flush(), first.delivered()]);
  first.standDown();
}

/** The sidecar's effects (run.ts) on `pool`, started as main.ts starts them, with these alerts. */
function effectsOn(
  pool: pg.Pool,
  {
    metrics,
    heads,
    ownAlerts,
    loop,
  }: Pick<ReturnType<typeof sidecarParts>, "metrics" | "heads" | "ownAlerts" | "loop">,
  alerts: Alerts,
  pauses?: PauseWatch,
) {
  const log = createLogger("error");
  return startEffects({
    config: fake.config,
    pool,
    heads,
    indexer: new IndexerWatch(fake.config, pool),
    loop,
    worker: new OutboxWorker(fake.config, pool, log, metrics),
    monitor: new AlertMonitor(fake.config, heads, alerts),
    alerts,
    ownAlerts,
    log,
    ...(pauses ? { pauses } : {}),
  });
}

it("resolves, on the next leader, a rule the last one left firing when its condition cleared meanwhile", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  const first = sidecarAlerts();
  await first.adopt();
  first.set("consecutive_errors", true, "critical", "5 consecutive sync errors");
  first.set("reorg_correction", true, "warning", "developers corrected after a reorg");
  // Both delivered, and recorded so (an undelivered one the next leader sends at once: below).
  await first.delivered();
  await first.flush();
  // The leader loses its session: it stands down and sends nothing (the condition did not clear).
  first.standDown();

  const next = sidecarAlerts();
  await next.adopt();
  // Still firing: not sent again within ALERT_REPEAT_MS. Cleared: resolved, and forgotten.
  next.set("reorg_correction", true, "warning", "developers corrected after a reorg");
  next.set("consecutive_errors", false, "critical", "");
  await next.flush();
  await waitFor("the webhook's deliveries", () => webhook.alerts.length === 3, { timeoutMs: 10_000, intervalMs: 10 });
  expect(sent().sort()).toEqual([
    "consecutive_errors firing",
    "consecutive_errors resolved",
    "reorg_correction firing",
  ]);
  expect(next.firing().map((f) => f.rule)).toEqual(["reorg_correction"]);
  const { rows } = await fake.db.query("SELECT rule FROM stakesync.alert_firing ORDER BY rule");
  expect(rows).toEqual([{ rule: "reorg_correction" }]);
});

/**
 * A webhook of the test's own: each request is answered `answer(n)` (n from 1) after `delayMs`;
 * `received` has the payloads it took (answered 2xx), as "rule state". With Alerts that retry,
 * as main.ts builds them, without the database; `url` for more.
 */
async function webhookAnswering(answer: (n: number) => { status: number; delayMs?: number }) {
  const received: string[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      requests += 1;
      const { status, delayMs = 0 } = answer(requests);
      const alert = JSON.parse(body) as { rule: string; state: string };
      setTimeout(() => {
        if (status < 300) received.push(`${alert.rule} ${alert.state}`);
        res.writeHead(status).end();
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
  const alerts = new Alerts({
    webhookUrl: url,
    repeatMs: 60_000,
    retry: { attempts: 3, delayMs: 200 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
  });
  return { alerts, url, received, requests: () => requests, close: () => server.close() };
}

/**
 * Sidecars on a fresh fake whose webhook answers 502 to its first request (a proxy restarting),
 * then takes each; `a` leads and has fired `lag`, its POST answered 502 and its retry due in 500 ms.
 */
async function firedInto502() {
  fake = await fakePonder();
  const webhook = await webhookAnswering((n) => ({ status: n === 1 ? 502 : 204 }));
  const sidecar = () =>
    new Alerts({
      webhookUrl: webhook.url,
      repeatMs: 60_000,
      retry: { attempts: 3, delayMs: 500 },
      log: createLogger("silent"),
      metrics: createMetrics([31337]),
      db: fake.db,
    });
  const a = sidecar();
  await a.adopt();
  a.set("lag", true, "warning", "sync lag above 100 blocks");
  await a.flush();
  await waitFor("the first POST", () => webhook.requests() === 1, { timeoutMs: 10_000, intervalMs: 5 });
  return { webhook, sidecar, a };
}

it("sends no firing retried by a sidecar that stood down: it landed after the new leader's resolved", async () => {
  const { webhook, sidecar, a } = await firedInto502();
  try {
    // A loses the lead; B takes over, adopts A's page and resolves it (the lag is gone).
    a.standDown();
    const b = sidecar();
    await b.adopt();
    b.set("lag", false, "warning", "");
    await Promise.all([b.flush(), b.delivered()]);
    expect(webhook.received).toEqual(["lag resolved"]);
    // Past A's backoff. Before: A's retry posted "firing" now, and the page stayed open for good.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await a.delivered();
    expect(webhook.received.at(-1)).toBe("lag resolved");
    expect(webhook.requests()).toBe(2);
  } finally {
    webhook.close();
  }
});

it("sends at once a firing adopted from a sidecar that stood down before delivering it, not after ALERT_REPEAT_MS", async () => {
  const { webhook, sidecar, a } = await firedInto502();
  try {
    // A stands down with its firing undelivered (dropped, see above); B adopts the row, and the
    // lag lasts. Before, B took the row for a page sent and repeated it a minute later.
    a.standDown();
    const b = sidecar();
    await b.adopt();
    b.set("lag", true, "warning", "sync lag above 100 blocks");
    await Promise.all([b.flush(), b.delivered()]);
    expect(webhook.received).toEqual(["lag firing"]);
    await b.flush();
    expect((await fake.db.query("SELECT delivered FROM stakesync.alert_firing")).rows).toEqual([{ delivered: true }]);
    // Adopted delivered, a third leader repeats it only after ALERT_REPEAT_MS.
    b.standDown();
    const c = sidecar();
    await c.adopt();
    c.set("lag", true, "warning", "sync lag above 100 blocks");
    await c.delivered();
    expect(webhook.received).toEqual(["lag firing"]);
    await a.delivered();
  } finally {
    webhook.close();
  }
});

it("delivers a rule's resolved after its firing, also when the firing's POST is retried", async () => {
  // A webhook that answers 502 to its first request (a proxy restarting), then takes each.
  const webhook = await webhookAnswering((n) => ({ status: n === 1 ? 502 : 204 }));
  try {
    // Fires, and clears before the firing's retry is due.
    webhook.alerts.set("lag", true, "warning", "sync lag above 100 blocks");
    await waitFor("the first POST", () => webhook.requests() === 1, { timeoutMs: 10_000, intervalMs: 5 });
    webhook.alerts.set("lag", false, "warning", "");
    await webhook.alerts.delivered();
    // The receiver's last word on the rule is that it cleared (before: "firing", after it).
    expect(webhook.received.at(-1)).toBe("lag resolved");
  } finally {
    webhook.close();
  }
});

it("names the sidecar in its database_unreachable resolved, as in the firing: each sidecar pages its own", async () => {
  webhook = await startWebhook();
  // A sidecar's own alerts, as main.ts builds them: they store nothing.
  const own = new Alerts({
    webhookUrl: webhook.url,
    repeatMs: 60_000,
    retry: { attempts: 0, delayMs: 0 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
  });
  checkUnreachable(own, { alertAfterErrors: 3 }, { tries: 3, error: "connect ECONNREFUSED" }, "a:1");
  await waitFor("the firing", () => webhook.alerts.length === 1, { timeoutMs: 10_000, intervalMs: 5 });
  checkUnreachable(own, { alertAfterErrors: 3 }, { tries: 0, error: null }, "a:1");
  await own.delivered();
  // Before, the resolved had no `sidecar`: which sidecar's page it closed, the receiver could not tell.
  expect(webhook.alerts.map((a) => [a.state, (a as { sidecar?: string }).sidecar])).toEqual([
    ["firing", "a:1"],
    ["resolved", "a:1"],
  ]);
});

it("tries a resolved until it is delivered: lost, nothing would ever close the page", async () => {
  // The receiver is away for longer than RETRY_ATTEMPTS (3 here) retries, just after the firing.
  const webhook = await webhookAnswering((n) => ({ status: n === 1 || n > 5 ? 204 : 503 }));
  try {
    webhook.alerts.set("lag", true, "warning", "sync lag above 100 blocks");
    await waitFor("the firing", () => webhook.received.length === 1, { timeoutMs: 10_000, intervalMs: 5 });
    webhook.alerts.set("lag", false, "warning", "");
    await webhook.alerts.delivered();
    expect(webhook.received).toEqual(["lag firing", "lag resolved"]);
  } finally {
    webhook.close();
  }
});

/**
 * A webhook that answers 503 to a resolved while `refuse()` says so and takes everything else
 * (`received`, as "rule state"); `alertsOf` makes a sidecar's Alerts posting to it, storing in
 * `db` (the fake's by default), with one retry 100 ms apart.
 */
async function resolvedReceiver(refuse: () => boolean) {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const alert = JSON.parse(body) as { rule: string; state: string };
      if (alert.state === "resolved" && refuse()) return res.writeHead(503).end();
      received.push(`${alert.rule} ${alert.state}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
  const alertsOf = (db: Queryable = fake.db) =>
    new Alerts({
      webhookUrl: url,
      repeatMs: 60_000,
      retry: { attempts: 1, delayMs: 100 },
      log: createLogger("silent"),
      metrics: createMetrics([31337]),
      db,
    });
  return { received, alertsOf, close: () => server.close() };
}

it("drops a resolved still retried once another leader has fired the rule again", async () => {
  fake = await fakePonder();
  // A receiver that this sidecar cannot reach with its resolved for a while.
  let refuseResolved = true;
  const { received, alertsOf, close } = await resolvedReceiver(() => refuseResolved);
  try {
    const first = alertsOf();
    await first.adopt();
    first.set("lag", true, "warning", "sync lag above 100 blocks");
    await waitFor("the firing", () => received.length === 1, { timeoutMs: 10_000, intervalMs: 5 });
    first.set("lag", false, "warning", "");
    await first.flush();
    first.standDown();
    // Another leader fires it again, and gets through.
    // Its clock 30 s behind this one's (two hosts): its firing's sent_at is earlier than the
    // resolved's time, which must not matter.
    const next = alertsOf();
    await next.adopt();
    const realNow = Date.now;
    Date.now = () => realNow() - 30_000;
    try {
      next.set("lag", true, "warning", "sync lag above 100 blocks");
    } finally {
      Date.now = realNow;
    }
    await Promise.all([next.flush(), next.delivered()]);
    // The first sidecar's receiver is back: its old resolved must not close the new page.
    refuseResolved = false;
    await first.delivered();
    expect(received).toEqual(["lag firing", "lag firing"]);
  } finally {
    close();
  }
});

it("delivers its resolved though its own DELETE of the rule's row failed: that row is its own, not a firing since", async () => {
  fake = await fakePonder();
  let resolvedTries = 0;
  const { received, alertsOf, close } = await resolvedReceiver(() => ++resolvedTries === 1);
  // The first DELETE of a row fails (a blip of the pool), the rest go through.
  let failed = false;
  const db = {
    query: (sql: string, params?: unknown[]) => {
      if (!failed && sql.startsWith("DELETE FROM stakesync.alert_firing")) {
        failed = true;
        return Promise.reject(new Error("connection timeout"));
      }
      return fake.db.query(sql, params);
    },
  } as Queryable;
  const alerts = alertsOf(db);
  try {
    await alerts.adopt();
    alerts.set("lag", true, "warning", "sync lag above 100 blocks");
    await waitFor("the firing", () => received.length === 1, { timeoutMs: 10_000, intervalMs: 5 });
    alerts.set("lag", false, "warning", "");
    await alerts.delivered();
    // Before: its own row, left by the failed DELETE, was taken for another leader's firing, and
    // the resolved dropped for good.
    expect(received).toEqual(["lag firing", "lag resolved"]);
    expect((await fake.db.query("SELECT rule FROM stakesync.alert_firing")).rows).toEqual([]);
  } finally {
    close();
  }
});

it("sends a rule that changes faster than a slow webhook answers only its latest state, not a backlog", async () => {
  // A webhook that takes 300 ms over each request.
  const webhook = await webhookAnswering(() => ({ status: 204, delayMs: 300 }));
  try {
    // lag hovering at MAX_LAG_BLOCKS: twenty changes while the first POST is under way.
    for (let n = 0; n < 20; n++) webhook.alerts.set("lag", n % 2 === 0, "warning", "sync lag above 100 blocks");
    await webhook.alerts.delivered();
    // The POST under way, then the latest (before, all twenty, one after another: 6 s behind).
    expect(webhook.received.length).toBeLessThanOrEqual(2);
    expect(webhook.received.at(-1)).toBe("lag resolved");
  } finally {
    webhook.close();
  }
});

/**
 * Checks of the rpc_failing rule, one per second of `seconds`, against a Ponder whose RPC error
 * counter rises at the seconds in `risesAt`: the checks at which the rule starts firing, and
 * those at which it clears. During the seconds in `standby` the sidecar is a standby: no check,
 * and nothing sent (as run.ts does).
 */
async function rpcFailing(
  risesAt: number[],
  seconds: number,
  standby: number[] = [],
): Promise<{ fired: number[]; cleared: number[] }> {
  let errors = 7;
  const ponder = http.createServer((_, res) => {
    res.end(
      `# TYPE ponder_rpc_request_error_total counter\nponder_rpc_request_error_total{chain="31337",method="eth_getLogs"} ${errors}\n`,
    );
  });
  await new Promise<void>((resolve) => ponder.listen(0, "127.0.0.1", resolve));
  try {
    const config = { ...fake.config, ponderUrl: `http://127.0.0.1:${(ponder.address() as AddressInfo).port}` };
    const heads = new Map<number, { block: number; at: number }>();
    let firing = false;
    const fired: number[] = [];
    const cleared: number[] = [];
    let second = -1;
    const alerts = {
      set: (rule: string, on: boolean) => {
        if (rule !== "rpc_failing" || on === firing) return;
        (on ? fired : cleared).push(second);
        firing = on;
      },
      firing: () => [],
    } as unknown as Alerts;
    const monitor = new AlertMonitor(config, heads, alerts);
    const status = {
      indexer: null,
      chains: [],
      outbox: { pending: 0, dead: 0 },
      developers: { refused: 0 },
      settingsDiffer: [],
    };
    const loop = { consecutiveErrors: 0 } as LoopState;
    for (second = -1; second < seconds; second++) {
      if (risesAt.includes(second)) errors += 1;
      if (standby.includes(second)) {
        monitor.standDown();
        firing = false; // Alerts.standDown forgets what it sent: the next leader's word counts
        continue;
      }
      for (const chain of config.chains) heads.set(chain.id, { block: 40, at: Date.now() }); // its own polls fine
      monitor.check(status as unknown as Status, loop, true, await monitor.readPonder());
    }
    return { fired, cleared };
  } finally {
    ponder.close();
  }
}

it("pages once on Ponder's RPC errors that keep rising, a deep reorg's retries too, not on errors that do not recur, and forgets them between terms", async () => {
  fake = await fakePonder();
  // A provider down for 10 s: Ponder's requests fail every second. Paged at the third, once,
  // cleared 30 s after the last failure.
  expect(await rpcFailing([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 50)).toEqual({ fired: [2], cleared: [39] });
  // Ponder after a deep reorg (soak, seed 8): its getLogs for a block gone failed, and was tried
  // again 2, 4, 8 and 16 s later, then a timeout and a retry at once, and so on. One page.
  expect(await rpcFailing([0, 1, 2, 4, 8, 16, 31, 32, 47, 64], 100)).toEqual({ fired: [2], cleared: [94] });
  // Lone failures, and two in a row: no page.
  expect(await rpcFailing([3, 10, 11, 25, 40], 50)).toEqual({ fired: [], cleared: [] });
  // Firing when it stood down at 10; leader again at 20, with two errors of Ponder's meanwhile:
  // nothing new to page on (before, it paged again at once and held the page 30 s).
  expect(await rpcFailing([0, 1, 2, 3, 15, 18], 40, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])).toEqual({
    fired: [2],
    cleared: [],
  });
});

it("keeps, on the next leader, an rpc_failing page the last one left, until Ponder's errors have stopped for 30 checks", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  // Ponder's error counter, no longer rising by the time the lead moves.
  const ponder = http.createServer((_, res) => {
    res.end('ponder_rpc_request_error_total{chain="31337",method="eth_getLogs"} 12\n');
  });
  await new Promise<void>((resolve) => ponder.listen(0, "127.0.0.1", resolve));
  try {
    const config = { ...fake.config, ponderUrl: `http://127.0.0.1:${(ponder.address() as AddressInfo).port}` };
    const first = sidecarAlerts();
    await first.adopt();
    first.set("rpc_failing", true, "warning", "RPC failing: Ponder's RPC requests are failing");
    await Promise.all([first.flush(), first.delivered()]);
    first.standDown();

    const next = sidecarAlerts();
    await next.adopt();
    const heads = new Map<number, { block: number; at: number }>();
    const monitor = new AlertMonitor(config, heads, next);
    const status = { indexer: null, chains: [], outbox: { dead: 0 }, developers: { refused: 0 }, settingsDiffer: [] };
    for (let second = 0; second < 3; second++) {
      for (const chain of config.chains) heads.set(chain.id, { block: 40, at: Date.now() });
      monitor.check(
        status as unknown as Status,
        { consecutiveErrors: 0 } as LoopState,
        true,
        await monitor.readPonder(),
      );
    }
    await next.delivered();
    // Before, its first check knew of no failure: it resolved the page (and a failure a few
    // seconds later paged again).
    expect(next.firing().map((f) => f.rule)).toEqual(["rpc_failing"]);
    expect(sent()).toEqual(["rpc_failing firing"]);
  } finally {
    ponder.close();
  }
});

it("keeps, on the next leader, a consecutive_errors page the last one left until a round of its own has synced", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  await lastLeaderLeft("consecutive_errors", "critical", "7 consecutive sync errors");

  // Repeated at every check here: what it repeats is the page it adopted.
  const next = sidecarAlerts(0);
  await next.adopt();
  const heads = new Map<number, { block: number; at: number }>();
  const monitor = new AlertMonitor(fake.config, heads, next);
  const status = { indexer: null, chains: [], outbox: { dead: 0 }, developers: { refused: 0 }, settingsDiffer: [] };
  const check = async (loop: Partial<LoopState>) => {
    for (const chain of fake.config.chains) heads.set(chain.id, { block: 40, at: Date.now() });
    await monitor.check(status as unknown as Status, { consecutiveErrors: 0, ...loop } as LoopState);
    await Promise.all([next.flush(), next.delivered()]);
  };
  // Its term's count starts at 0 while the failure lasts: before, its first check resolved the
  // page, which came back once the count reached ALERT_AFTER_ERRORS again.
  await check({ syncedThisTerm: false });
  await check({ syncedThisTerm: false, consecutiveErrors: 2 });
  expect(next.firing().map((f) => f.rule)).toEqual(["consecutive_errors"]);
  expect(new Set(sent())).toEqual(new Set(["consecutive_errors firing"]));
  // Not "0 consecutive sync errors; last: undefined undefined".
  expect(webhook.alerts.map((a) => a.text)).not.toContainEqual(expect.stringContaining("undefined"));
  // Its own round synced: resolved.
  await check({ syncedThisTerm: true });
  await waitFor("the resolved", () => sent().includes("consecutive_errors resolved"), {
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  expect(next.firing()).toEqual([]);
});

it("evaluates no rule for a while after the sidecar itself was stopped, then pages as before", async () => {
  fake = await fakePonder();
  const { metrics, heads, alerts, ownAlerts, loop } = sidecarParts(fake.config);
  // No head for a minute: rpc_failing, once the rules run. The sidecar leads (its lock held by
  // the test's session), and was stopped a moment ago.
  heads.set(CHAIN, { block: 30, at: Date.now() - 60_000 });
  const leader = await leadingSession(fake.url);
  loop.state.role = "leader";
  loop.state.leaderPid = leader.pid;
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  // Its timer's beat 15 s late: the process was stopped and resumed just now. Settles in 1.5 s here.
  const pauses = new PauseWatch(1000, 1500, performance.now() - 16_000);
  pauses.tick();
  const stop = effectsOn(pool, { metrics, heads, ownAlerts, loop }, alerts, pauses);
  try {
    const resumedAt = performance.now();
    await waitFor("rpc_failing", () => alerts.firing().some((a) => a.rule === "rpc_failing"));
    // Not in the first ticks after the pause (each a second apart): only once it has settled.
    expect(performance.now() - resumedAt).toBeGreaterThanOrEqual(1500);
  } finally {
    await stop();
    await pool.end();
    await leader.client.end();
  }
});

it("takes a term that ended and began again between two ticks, with the same pid, for another: stands down", async () => {
  fake = await fakePonder();
  const { metrics, heads, alerts, ownAlerts, loop } = sidecarParts(fake.config);
  const leader = await leadingSession(fake.url);
  loop.state.role = "leader";
  loop.state.leaderPid = leader.pid;
  loop.state.terms = 1;
  const standDowns = vi.spyOn(alerts, "standDown");
  const adoptions = vi.spyOn(alerts, "adopt");
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  const stop = effectsOn(pool, { metrics, heads, ownAlerts, loop }, alerts);
  try {
    await waitFor("the first term adopted", () => adoptions.mock.calls.length > 0);
    const before = standDowns.mock.calls.length;
    // Another term (a failover: on the new primary, its leader connection has the same pid).
    loop.state.terms = 2;
    await waitFor("stood down", () => standDowns.mock.calls.length > before, { timeoutMs: 15_000 });
  } finally {
    await stop();
    await pool.end();
    await leader.client.end();
  }
});

it("judges no rule on reads that outlasted its term: the leader stood down during them", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  await lastLeaderLeft("lag", "warning", "sync lag above 100 blocks");

  const { metrics, heads, ownAlerts, loop } = sidecarParts(fake.config);
  const alerts = sidecarAlerts();
  // It leads: the server has its lock (the test's session) until the end, so that only its
  // loop's word tells the term ended.
  const leader = await leadingSession(fake.url);
  loop.state.role = "leader";
  loop.state.leaderPid = leader.pid;
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  // The status reads wait: another session holds a table they read.
  const holder = new pg.Client({ connectionString: fake.url });
  await holder.connect();
  await holder.query("BEGIN; LOCK TABLE stakesync.developer_queue IN ACCESS EXCLUSIVE MODE");
  const stop = effectsOn(pool, { metrics, heads, ownAlerts, loop }, alerts);
  try {
    await waitFor("a tick's reads waiting", async () => {
      const { rows } = await fake.db.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      return rows[0]?.n > 0;
    });
    // The term ends meanwhile; the reads go on once the lock is gone.
    loop.state.role = "standby";
    loop.state.leaderPid = null;
    await holder.query("ROLLBACK");
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // Judged as a standby's (lag 30 of 100 allowed: clear), the page was resolved, and deleted
    // from what the next leader adopts.
    expect(sent()).toEqual(["lag firing"]);
    expect((await fake.db.query("SELECT rule FROM stakesync.alert_firing")).rows).toEqual([{ rule: "lag" }]);
  } finally {
    await stop();
    await holder.end();
    await pool.end();
    await leader.client.end();
  }
});

it("names on /status where a live sidecar's settings differ, pages once that has lasted, and clears when it is gone", async () => {
  fake = await fakePonder({ MIN_STAKE: "10" });
  webhook = await startWebhook();
  const { heads, loop, appOn } = sidecarParts(fake.config);
  const app = appOn(fake.pool());
  const differ = async () => ((await (await app.request("/status")).json()) as Status).settingsDiffer;
  // This sidecar, and another with the same settings: nothing to tell.
  await announceSettings(fake.db, fake.config);
  await announceSettings(fake.db, { ...fake.config, minStake: "10.0" }, "host-b:2:b");
  expect(await differ()).toEqual([]);
  // Nor two ways of writing the same: CHAINS in another order.
  await withdrawSettings(fake.db, "host-b:2:b");
  const [chain] = fake.config.chains;
  if (!chain) throw new Error("no chain");
  await announceSettings(
    fake.db,
    {
      ...fake.config,
      chains: [{ ...chain, id: 8453 }, chain],
    },
    "host-c:3:c",
  );
  expect(await settingsDiffer(fake.db, { ...fake.config, chains: [chain, { ...chain, id: 8453 }] })).toEqual([]);
  await withdrawSettings(fake.db, "host-c:3:c");
  // The other one deployed with another token's decimals and MIN_STAKE 0 (a rolling deploy, a typo).
  const other = { ...fake.config, minStake: "0", stakeDecimals: 18, activationThreshold: 1n };
  await announceSettings(fake.db, other, "host-b:2:b");
  expect(await differ()).toEqual([
    "STAKE_DECIMALS: 6 here, 18 on host-b:2:b",
    "MIN_STAKE: 10 here, 0.000000000000000001 on host-b:2:b",
  ]);
  expect(await (await app.request("/metrics")).text()).toMatch(/^stakesync_settings_differ 2$/m);
  expect(await (await app.request("/")).text()).toContain("STAKE_DECIMALS: 6 here, 18 on host-b:2:b");

  // The leader pages once the difference has lasted (here 300 ms), and clears once it is gone.
  let alerts = sidecarAlerts();
  await alerts.adopt();
  let monitor = new AlertMonitor(fake.config, heads, alerts, 300);
  loop.state.role = "leader";
  const check = async () => {
    for (const chain of fake.config.chains) heads.set(chain.id, { block: 30, at: Date.now() });
    await monitor.check(await readStatus(fake.pool(), fake.config, heads, null, loop.state), loop.state);
    await alerts.flush();
  };
  await check();
  expect(alerts.firing().map((f) => f.rule)).not.toContain("settings_differ");
  await new Promise((resolve) => setTimeout(resolve, 350));
  await check();
  expect(alerts.firing().map((f) => f.rule)).toContain("settings_differ");
  await waitFor("the page", () => webhook.alerts.some((a) => a.rule === "settings_differ"), { timeoutMs: 10_000 });
  expect(JSON.stringify(webhook.alerts.find((a) => a.rule === "settings_differ"))).toContain(
    "STAKE_DECIMALS: 6 here, 18 on host-b:2:b",
  );
  // A failover while they still differ (a rolling deploy moves the lead too): the next leader
  // adopts the page and keeps it. Before, its first check had seen the difference for no time
  // at all: it resolved the page, and paged again once the difference had lasted for it.
  await alerts.delivered();
  await alerts.flush(); // its delivery recorded: adopted as sent (an undelivered one is sent again)
  alerts.standDown();
  monitor.standDown();
  alerts = sidecarAlerts();
  await alerts.adopt();
  monitor = new AlertMonitor(fake.config, heads, alerts, 300);
  await check();
  await alerts.delivered();
  expect(alerts.firing().map((f) => f.rule)).toContain("settings_differ");
  expect(webhook.alerts.filter((a) => a.rule === "settings_differ").map((a) => a.state)).toEqual(["firing"]);
  // Killed (not seen for 30 s): no longer counted; a graceful stop withdraws at once.
  await fake.db.query(
    "UPDATE stakesync.sidecar SET seen_at = now() - interval '31 seconds' WHERE instance = 'host-b:2:b'",
  );
  expect(await differ()).toEqual([]);
  await check();
  expect(alerts.firing().map((f) => f.rule)).not.toContain("settings_differ");
  await announceSettings(fake.db, other, "host-b:2:b");
  expect(await differ()).toHaveLength(2);
  await withdrawSettings(fake.db, "host-b:2:b");
  expect(await differ()).toEqual([]);
});

it("keeps, on the next leader, an indexer_down page the last one left while Ponder's problem has lasted less than INDEXER_DOWN_AFTER_MS, and resolves it once Ponder answers", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  await lastLeaderLeft("indexer_down", "critical", "indexer down: http://127.0.0.1:9/health unreachable");

  const next = sidecarAlerts();
  await next.adopt();
  const heads = new Map<number, { block: number; at: number }>();
  const monitor = new AlertMonitor(fake.config, heads, next);
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  // Ponder still down (nothing listens on port 9), seen for less than the threshold: the new
  // sidecar's watch started with its process.
  const watch = new IndexerWatch(
    { ponderUrl: "http://127.0.0.1:9", ponderSchema: fake.config.ponderSchema, indexerDownAfterMs: 30_000 },
    pool,
  );
  const status = { chains: [], outbox: { dead: 0 }, developers: { refused: 0 }, settingsDiffer: [] };
  /** A check of the leader's rules with `by`'s verdict on Ponder. */
  const check = async (by = watch) => {
    for (const chain of fake.config.chains) heads.set(chain.id, { block: 40, at: Date.now() });
    await monitor.check(
      { ...status, indexer: by.down() } as unknown as Status,
      { consecutiveErrors: 0, syncedThisTerm: true } as LoopState,
      by.judged(),
    );
    await Promise.all([next.flush(), next.delivered()]);
  };
  try {
    expect(watch.judged()).toBe(false); // not looked yet
    await check();
    await watch.observe();
    expect(watch.down()).toBeNull();
    await check();
    // Before, its first check resolved the page, and a new one followed once the problem had lasted.
    expect(sent()).toEqual(["indexer_down firing"]);
    expect(next.firing().map((f) => f.rule)).toEqual(["indexer_down"]);
    // Lasted: its own verdict, the page fires on.
    await watch.observe(Date.now() + 31_000);
    expect(watch.down(Date.now() + 31_000)).not.toBeNull();
    expect(watch.judged(Date.now() + 31_000)).toBe(true);
  } finally {
    await pool.end();
  }
  // Ponder answers (a fake /health, and the fake's heartbeat): resolved at the next check.
  const ponder = http.createServer((_, res) => res.end("ok")).listen(0);
  await new Promise((resolve) => ponder.once("listening", resolve));
  const pool2 = new pg.Pool({ connectionString: fake.url, max: 2 });
  try {
    const up = new IndexerWatch(
      {
        ponderUrl: `http://127.0.0.1:${(ponder.address() as AddressInfo).port}`,
        ponderSchema: fake.config.ponderSchema,
        indexerDownAfterMs: 30_000,
      },
      pool2,
    );
    await up.observe();
    // /health answers, but a heartbeat read once may be one that stopped: no verdict yet (a
    // Ponder whose heartbeat stopped looked up for 30 s, and the page was resolved, then again).
    expect(up.down()).toBeNull();
    expect(up.judged()).toBe(false);
    // Its heartbeat moves: up.
    await fake.db.query(
      `UPDATE ${fake.config.ponderSchema}._ponder_meta SET value = jsonb_set(value, '{heartbeat_at}', to_jsonb(1)) WHERE key = 'app'`,
    );
    await up.observe();
    expect(up.judged()).toBe(true);
    await check(up);
    expect(sent()).toEqual(["indexer_down firing", "indexer_down resolved"]);
  } finally {
    ponder.close();
    await pool2.end();
  }
});

it("pages consecutive_errors with the last error's text for the webhook alone, not in the text /status shows", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  const alerts = sidecarAlerts();
  await alerts.adopt();
  const heads = new Map<number, { block: number; at: number }>();
  const monitor = new AlertMonitor(fake.config, heads, alerts);
  const status = { indexer: null, chains: [], outbox: { dead: 0 }, developers: { refused: 0 }, settingsDiffer: [] };
  // A trigger's message that quotes a row's values.
  const message = "developer Jane Doe of Acme is frozen";
  await monitor.check(
    status as unknown as Status,
    { consecutiveErrors: 5, lastError: { kind: "sync", message, at: new Date().toISOString() } } as LoopState,
  );
  await Promise.all([alerts.flush(), alerts.delivered()]);
  expect(JSON.stringify(alerts.firing())).not.toContain("Jane Doe");
  expect(alerts.firing().find((f) => f.rule === "consecutive_errors")?.text).toBe(
    "5 consecutive sync errors; last: sync",
  );
  expect(webhook.alerts.find((a) => a.rule === "consecutive_errors")).toMatchObject({ lastError: message });
});

it("keeps the lag page while a chain that was behind has no known head, and clears it only at half MAX_LAG_BLOCKS", async () => {
  fake = await fakePonder({ MAX_LAG_BLOCKS: "100" });
  webhook = await startWebhook();
  const alerts = sidecarAlerts();
  await alerts.adopt();
  const monitor = new AlertMonitor(fake.config, new Map(), alerts);
  const check = async (lagBlocks: number | null) => {
    const status = {
      chains: [{ chainId: CHAIN, lagBlocks }],
      outbox: { dead: 0 },
      developers: { refused: 0 },
      settingsDiffer: [],
      indexer: null,
    };
    await monitor.check(status as unknown as Status, { consecutiveErrors: 0, syncedThisTerm: true } as LoopState);
    await Promise.all([alerts.flush(), alerts.delivered()]);
  };
  await check(500);
  // The provider fails for a while: the head is unknown, the sync as far behind as it was.
  await check(null);
  // Back: 60 behind, under the limit but not caught up; then around the limit.
  await check(60);
  await check(101);
  await check(99);
  // Before: "lag firing, lag resolved, lag firing, lag resolved, lag firing, lag resolved".
  expect(sent().filter((s) => s.startsWith("lag"))).toEqual(["lag firing"]);
  await check(50);
  expect(sent().filter((s) => s.startsWith("lag"))).toEqual(["lag firing", "lag resolved"]);
});

it("clears the lag page half way between CONFIRMATIONS and MAX_LAG_BLOCKS, where a current sync lags by CONFIRMATIONS", async () => {
  fake = await fakePonder({ MAX_LAG_BLOCKS: "100", CONFIRMATIONS: "60" });
  webhook = await startWebhook();
  const alerts = sidecarAlerts();
  await alerts.adopt();
  const monitor = new AlertMonitor(fake.config, new Map(), alerts);
  const check = async (lagBlocks: number) => {
    const status = { chains: [{ chainId: CHAIN, lagBlocks }], outbox: { dead: 0 }, developers: { refused: 0 } };
    await monitor.check(
      { ...status, settingsDiffer: [], indexer: null } as unknown as Status,
      { consecutiveErrors: 0, syncedThisTerm: true } as LoopState,
    );
    await Promise.all([alerts.flush(), alerts.delivered()]);
  };
  await check(150);
  await check(85); // still 25 behind a current sync
  const lag = () => sent().filter((s) => s.startsWith("lag"));
  expect(lag()).toEqual(["lag firing"]);
  // Caught up: 61 blocks behind the head, 1 behind CONFIRMATIONS. Before: it fired for good (half of 100 is below 60).
  await check(61);
  expect(lag()).toEqual(["lag firing", "lag resolved"]);
});

it("resolves, at adoption, a rule this version does not evaluate, and deletes only its own row when one resolves", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  // Left by a newer version, rolled back since: nothing here would ever resolve it.
  await fake.db.query(
    `INSERT INTO stakesync.alert_firing (rule, severity, text, sent_at) VALUES ('future_rule', 'warning', 'from v2', now())`,
  );
  const leader = sidecarAlerts();
  await leader.adopt();
  await Promise.all([leader.flush(), leader.delivered()]);
  // Before: kept firing on /status for good, never resolved at the receiver.
  expect(sent()).toEqual(["future_rule resolved"]);
  expect(leader.firing()).toEqual([]);
  const rows = async () =>
    (await fake.db.query<{ rule: string }>("SELECT rule FROM stakesync.alert_firing ORDER BY rule")).rows.map(
      (r) => r.rule,
    );
  expect(await rows()).toEqual([]);

  leader.set("lag", true, "warning", "behind");
  await leader.flush();
  // Meanwhile a newer leader fired the rule again (its row); this one's resolved comes late.
  await fake.db.query("UPDATE stakesync.alert_firing SET sent_at = now() + interval '1 minute', text = 'newer'");
  leader.set("lag", false, "warning", "");
  await Promise.all([leader.flush(), leader.delivered()]);
  // Before: its DELETE took the newer leader's row, and that page was lost to the leader after it.
  expect(await rows()).toEqual(["lag"]);
});

it("deletes its own row on resolve though a repeat's write failed, and delivers that resolved", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  let inserts = 0;
  // The second write of the rule's row fails (a pool exhausted, a blip), as when alerts fire.
  const db = {
    query: (text: string, values?: unknown[]) =>
      text.includes("INSERT INTO stakesync.alert_firing") && ++inserts === 2
        ? Promise.reject(new Error("timeout exceeded when trying to connect"))
        : fake.db.query(text, values),
  } as unknown as Queryable;
  const alerts = new Alerts({
    webhookUrl: webhook.url,
    repeatMs: 100,
    retry: { attempts: 0, delayMs: 0 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
    db,
  });
  await alerts.adopt();
  alerts.set("lag", true, "warning", "behind");
  await alerts.flush();
  await new Promise((resolve) => setTimeout(resolve, 150));
  alerts.set("lag", true, "warning", "behind"); // a repeat: its write fails
  await alerts.flush();
  alerts.set("lag", false, "warning", "");
  await Promise.all([alerts.flush(), alerts.delivered()]);
  // Before: the row of the first firing stayed, shown firing on every standby's /status.
  expect(await leaderFiring(fake.db)).toEqual([]);
  expect(sent()).toEqual(["lag firing", "lag firing", "lag resolved"]);
});

it("judges no rule on a read of Ponder's /metrics that outlasted its lead: another sidecar took over and adopted its page meanwhile", async () => {
  // Ponder's /metrics answers once told: the leader frozen (SIGSTOP) in the middle of its read.
  const held: http.ServerResponse[] = [];
  let holding = true;
  const ponder = http.createServer((_, res) => {
    if (holding) held.push(res);
    else res.end("");
  });
  await new Promise<void>((resolve) => ponder.listen(0, "127.0.0.1", resolve));
  fake = await fakePonder({ PONDER_URL: `http://127.0.0.1:${(ponder.address() as AddressInfo).port}` });
  webhook = await startWebhook();
  const text = "1 outbox job(s) and 0 developers row(s) the database refused, dead-lettered: see /admin/dead-letters";
  await lastLeaderLeft("dead_letter", "warning", text);
  await fake.db.query("INSERT INTO stakesync.outbox (kind, wallet, state) VALUES ('welcome_email', $1, 'dead')", [
    wallet(1),
  ]);
  const row = async () => (await fake.db.query("SELECT * FROM stakesync.alert_firing")).rows;
  const left = await row();

  const { metrics, heads, ownAlerts, loop } = sidecarParts(fake.config);
  // A adopts the page, its repeat due at its next check (ALERT_REPEAT_MS 0 here).
  const alerts = sidecarAlerts(0);
  const a = await leadingSession(fake.url);
  loop.state.role = "leader";
  loop.state.leaderPid = a.pid;
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  const stop = effectsOn(pool, { metrics, heads, ownAlerts, loop }, alerts);
  let b: Awaited<ReturnType<typeof leadingSession>> | undefined;
  try {
    await waitFor("A's read of Ponder's /metrics", () => held.length > 0, { intervalMs: 10 });
    // Meanwhile the server ends A's session and B leads, adopting the row as it is; A's loop has
    // not heard yet. Then A thaws and its read is answered.
    await a.client.end();
    b = await leadingSession(fake.url);
    holding = false;
    for (const res of held.splice(0)) res.end("");
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // Before: A repeated the page (a duplicate at the receiver) and wrote its own sent_at over
    // B's row, which B's resolve then missed.
    expect(sent()).toEqual(["dead_letter firing"]);
    expect(await row()).toEqual(left);
  } finally {
    await stop();
    await pool.end();
    await b?.client.end();
    ponder.close();
  }
});

it("writes nothing to alert_firing without the leader lock: a sidecar whose term ended neither repeats over nor deletes the next leader's row", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  const rows = async () =>
    (await fake.db.query("SELECT rule, text, sent_at, first_at FROM stakesync.alert_firing ORDER BY rule")).rows;
  const a = await leadingSession(fake.url);
  const old = sidecarAlerts(0);
  await old.adopt(a.pid);
  old.set("dead_letter", true, "warning", "1 dead letter");
  await old.flush();
  const left = await rows();
  expect(left.map((r) => r.rule)).toEqual(["dead_letter"]);
  // Its session ends, and B leads; A has not heard yet.
  await a.client.end();
  const b = await leadingSession(fake.url);
  try {
    old.set("dead_letter", true, "warning", "1 dead letter, repeated");
    old.set("lag", true, "warning", "behind");
    await old.flush();
    expect(await rows()).toEqual(left);
    old.set("dead_letter", false, "warning", "");
    await old.flush();
    expect(await rows()).toEqual(left);
    // Nor one whose term's server is another (a failover left the old primary running, and B's
    // leader connection here has A's pid there): the same pid, not the same server.
    const stale = sidecarAlerts(0);
    await stale.adopt(b.pid, "1234567890.123456");
    stale.set("lag", true, "warning", "behind");
    await stale.flush();
    expect(await rows()).toEqual(left);
    // B, which holds the lock, writes: it adopts the row and resolves it.
    const { rows: servers } = await fake.db.query<{ server: string }>(`SELECT ${SERVER_START} AS server`);
    const next = sidecarAlerts(0);
    await next.adopt(b.pid, servers[0]?.server ?? null);
    next.set("dead_letter", false, "warning", "");
    await next.flush();
    expect(await rows()).toEqual([]);
  } finally {
    await b.client.end();
  }
});

it("pages reorg_correction from the audit, also on a leader that did not make the correction (the one that did crashed before its check), and exports its time", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  // The last leader's correction, committed just before it crashed.
  const audit = (reason: string) =>
    fake.db.query(
      "INSERT INTO stakesync.audit (wallet, new_status, new_amount, reason) VALUES ($1, 'inactive', 0, $2)",
      [wallet(1), reason],
    );
  await audit("reorg");
  const { heads, loop, metrics } = sidecarParts(fake.config);
  const alerts = sidecarAlerts();
  await alerts.adopt();
  const monitor = new AlertMonitor(fake.config, heads, alerts);
  const check = async () => {
    const status = await readStatus(fake.pool(), fake.config, heads, null, loop.state);
    monitor.check(status, loop.state);
    await alerts.flush();
    return status;
  };
  // The sidecar's clock an hour ahead of the database's: the correction's age is the database's.
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 3_600_000 });
  let status: Awaited<ReturnType<typeof check>>;
  try {
    status = await check();
  } finally {
    vi.useRealTimers();
  }
  // Before: a new monitor knew of no correction, and the page was lost with the last leader.
  expect(alerts.firing().map((f) => f.rule)).toContain("reorg_correction");
  const { rows } = await fake.db.query<{ at: Date }>("SELECT created_at AS at FROM stakesync.audit");
  expect(status.lastReorgCorrectionAt).toBe(rows[0]?.at.toISOString());
  // For Prometheus, on every sidecar: the time of the correction (its rule: within 15 minutes).
  observeStatus(metrics, status, undefined, heads);
  expect((await metrics.lastReorgCorrectionTime.get()).values[0]?.value).toBe((rows[0]?.at.getTime() ?? 0) / 1000);

  // Older than ALERT_REPEAT_MS, and other changes since: cleared.
  await fake.db.query("UPDATE stakesync.audit SET created_at = created_at - $1 * interval '1 millisecond'", [
    fake.config.alertRepeatMs + 1000,
  ]);
  await audit("stake");
  await check();
  expect(alerts.firing().map((f) => f.rule)).not.toContain("reorg_correction");
});

it("shows since when an alert has fired, not its last repeat, on the leader, on a standby and on the next leader", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  const alerts = sidecarAlerts(100);
  await alerts.adopt();
  alerts.set("lag", true, "warning", "behind");
  await alerts.flush();
  const since = alerts.firing()[0]?.since;
  expect((await leaderFiring(fake.db))[0]?.since).toBe(since);
  const repeat = async (leader: Alerts) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    leader.set("lag", true, "warning", "behind");
    await Promise.all([leader.flush(), leader.delivered()]);
  };
  await repeat(alerts);
  expect(sent()).toEqual(["lag firing", "lag firing"]);
  // Before: the repeat's time, on the leader and on every standby.
  expect(alerts.firing()[0]?.since).toBe(since);
  expect((await leaderFiring(fake.db))[0]?.since).toBe(since);
  // The next leader adopts it with its start, and keeps that through its own repeats.
  alerts.standDown();
  const next = sidecarAlerts(100);
  await next.adopt();
  expect(next.firing()[0]?.since).toBe(since);
  await repeat(next);
  expect(sent()).toHaveLength(3);
  expect(next.firing()[0]?.since).toBe(since);
  expect((await leaderFiring(fake.db))[0]?.since).toBe(since);
});

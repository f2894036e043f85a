/**
 * The sidecar's HTTP surface (README "HTTP"). Handlers read through their own small pools, so a
 * burst of requests cannot take the connections the leader's worker and alert rules need; and
 * the probes, the scrape and the admin routes through one of their own (`probePool`), so that
 * anonymous look-ups waiting on a lock cannot make /ready answer "database unreachable". The
 * admin routes write only what is safe from any sidecar (a dead letter back in line) or ask the
 * leader's loop.
 */
import { Hono } from "hono";
import type pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import { type Alerts, leaderFiring } from "../effects/alerts";
import { deadLetterIdState, discardDeadLetter, listDeadLetters, listJobs, retryDeadLetter } from "../effects/outbox";
import type { IndexerWatch } from "../indexer-watch";
import { type Metrics, observeLoop, observeStatus } from "../metrics";
import { errorText } from "../redact";
import { countDevelopers, readDeveloper, readRecentChanges, readStatus } from "../status";
import { classify, LEADERSHIP_LOST, PONDER_NOT_THERE, type SyncLoop, WRITE_WAITS } from "../sync/loop";
import { countDiffering } from "../sync/plan-developers";
import { developersBusy } from "../sync/sql/lock-developers";
import { adminAuth } from "./admin-auth";
import { StatusPage } from "./page";

export type AppDeps = {
  config: SidecarConfig;
  /** The public pages' and look-ups' reads. */
  pool: pg.Pool;
  /** /ready's, /metrics' and the admin routes' reads (pools.ts); `pool` when not given. */
  probePool?: pg.Pool;
  heads: Map<number, Head>;
  /** Ponder's state as every sidecar observes it: `down()` is why it counts as down, or null. */
  indexer: Pick<IndexerWatch, "down">;
  loop: SyncLoop;
  metrics: Metrics;
  alerts: Alerts;
  log: Logger;
};

const WALLET = /^0x[0-9a-fA-F]{40}$/;
const COUNT_CACHE_MS = 5000;
const SHADOW_CACHE_MS = 10_000;

/**
 * `read`'s answer, reused for `ms` after it arrived, and while a new read fails; one read at a time (a slow full count must
 * not start another every few seconds and take the HTTP pool's connections). `latest()` never
 * waits: the last answer, or undefined, and a fresh read begun when it is due (for /metrics,
 * which must answer within a scrape timeout).
 */
function cached<T>(ms: number, read: () => Promise<T>) {
  let last: { at: number; value: T } | undefined;
  let running: Promise<T> | undefined;
  const refresh = () => {
    running ??= read()
      .then((value) => {
        // The monotonic clock: a wall clock stepped back an hour kept the counts an hour.
        last = { at: performance.now(), value };
        return value;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const due = () => !last || performance.now() - last.at > ms;
  return {
    // A read that fails (the HTTP pool gives up on a lock after HTTP_LOCK_WAIT_MS: an application
    // migration holds developers) answers with the last answer, if there is one.
    get: (): Promise<T> =>
      due()
        ? refresh().catch((error) => {
            if (last) return last.value;
            throw error;
          })
        : Promise.resolve((last as { value: T }).value),
    latest: (): T | undefined => {
      if (due()) refresh().catch(() => undefined);
      return last?.value;
    },
  };
}

export function createApp({ config, pool, probePool = pool, heads, indexer, loop, metrics, alerts, log }: AppDeps) {
  const app = new Hono();
  const status = (over = pool) => readStatus(over, config, heads, indexer.down(), loop.state);

  app.get("/health", (c) => c.json({ status: "ok" }));

  app.get("/ready", async (c) => {
    const s = await status(probePool).catch(() => ({ ready: false, reason: "database unreachable" }));
    return s.ready ? c.json({ ready: true }) : c.json({ ready: false, reason: s.reason }, 503);
  });

  // Counted at most every COUNT_CACHE_MS: the status page refreshes every 3 s in every open tab.
  const developerCounts = cached(COUNT_CACHE_MS, () => countDevelopers(pool, config));

  // Shadow mode: how many rows a write would change (a full comparison, so also kept a while).
  const differing = cached(SHADOW_CACHE_MS, () =>
    config.mode === "shadow" ? countDiffering(pool, config) : Promise.resolve(null),
  );

  /** The leader's alerts: its own, or on a standby as the leader last sent them. */
  const firing = () => (loop.state.role === "leader" ? Promise.resolve(alerts.firing()) : leaderFiring(pool));

  /**
   * What /status and the page add to the status read, each null when it cannot be read: the
   * counts wait for developers' lock (an application's migration at a sidecar's start, before any
   * answer to reuse), shadow mode's comparison may outlast its statement's limit on a large table.
   * Before, either failed the whole answer, for as long as it lasted.
   */
  const extras = () =>
    Promise.all([
      developerCounts.get().catch(() => null),
      // undefined: not shadow mode, nothing to compare; null: not read this time.
      config.mode === "shadow" ? differing.get().catch(() => null) : undefined,
      firing().catch(() => null),
    ]);

  app.get("/status", async (c) => {
    const [s, [byStatus, diff, firingNow]] = await Promise.all([status(), extras()]);
    return c.json({
      ...s,
      mode: config.mode,
      developers: {
        ...s.developers,
        byStatus,
        ...(diff === undefined ? {} : { differing: diff }),
      },
      alerts: firingNow,
    });
  });

  app.get("/metrics", async (c) => {
    const s = await status(probePool).catch(() => undefined);
    observeLoop(metrics, loop.state);
    metrics.statusReadOk.set(s ? 1 : 0);
    if (s) observeStatus(metrics, s, developerCounts.latest(), heads, config.mode);
    const diff = differing.latest();
    if (diff !== null && diff !== undefined) metrics.developersDiffering.set(diff);
    return c.body(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType });
  });

  app.get("/developers/:wallet", async (c) => {
    const wallet = c.req.param("wallet");
    if (!WALLET.test(wallet)) return c.json({ error: "wallet must be 0x followed by 40 hex digits" }, 400);
    const page = pageQuery(c.req.query("after"), c.req.query("limit"), "an audit id");
    if ("error" in page) return c.json(page, 400);
    const developer = await readDeveloper(pool, config, wallet.toLowerCase(), page);
    return developer ? c.json(developer) : c.json({ error: "unknown wallet" }, 404);
  });

  const startBlocks = new Map(config.chains.map((chain) => [chain.id, chain.startBlock]));
  app.get("/", async (c) => {
    // ?refresh=0 holds the page still (to read or copy from it); without it, the page's default.
    const refresh = c.req.query("refresh");
    if (refresh !== undefined && !/^\d{1,4}$/.test(refresh)) {
      return c.text("refresh must be a whole number of seconds (0 to stop refreshing)\n", 400);
    }
    const [s, changes, [counts, diff, firingNow]] = await Promise.all([
      status(),
      readRecentChanges(pool).catch(() => null),
      extras(),
    ]);
    return c.html(
      <StatusPage
        status={s}
        changes={changes}
        alerts={firingNow}
        explorerUrl={config.explorerUrl}
        startBlocks={startBlocks}
        maxLagBlocks={config.maxLagBlocks}
        developerCounts={counts}
        emailConfigured={config.smtpUrl !== undefined}
        shadow={diff === undefined ? null : { differing: diff }}
        refreshSeconds={refresh === undefined ? undefined : Number(refresh)}
      />,
    );
  });

  const admin = new Hono();
  admin.use("*", adminAuth(config.adminToken));
  admin.get("/dead-letters", async (c) => {
    const page = pageQuery(c.req.query("after"), c.req.query("limit"), "a dead letter's id");
    if ("error" in page) return c.json(page, 400);
    return c.json(await listDeadLetters(probePool, page));
  });
  admin.post("/dead-letters/:id/retry", async (c) => {
    const id = c.req.param("id");
    if (!/^[1-9]\d{0,17}$/.test(id)) return c.json({ error: "id must be a positive integer" }, 400);
    if (!(await retryDeadLetter(probePool, BigInt(id)))) {
      // Two operators retrying at once, or a retry repeated after its answer was lost: say so.
      const state = await deadLetterIdState(probePool, BigInt(id));
      const error = state
        ? `${id} is not a dead letter: it is ${state} (retried already?)`
        : `no dead letter with id ${id}`;
      return c.json({ error }, 404);
    }
    return c.json({ id, state: "pending" });
  });
  admin.post("/dead-letters/:id/discard", async (c) => {
    const id = c.req.param("id");
    if (!/^[1-9]\d{0,17}$/.test(id)) return c.json({ error: "id must be a positive integer" }, 400);
    if (!(await discardDeadLetter(probePool, BigInt(id)))) {
      const state = await deadLetterIdState(probePool, BigInt(id));
      if (state === "dead") {
        return c.json(
          {
            error: `${id} is a developers row the database refused: it must follow the chain, so it cannot be discarded; fix what refuses it, then retry it`,
          },
          409,
        );
      }
      const error = state
        ? `${id} is not a dead letter: it is ${state} (discarded or retried already?)`
        : `no dead letter with id ${id}`;
      return c.json({ error }, 404);
    }
    return c.json({ id, state: "skipped", skipReason: "discarded" });
  });
  admin.get("/jobs/:wallet", async (c) => {
    const wallet = c.req.param("wallet");
    if (!WALLET.test(wallet)) return c.json({ error: "wallet must be 0x followed by 40 hex digits" }, 400);
    return c.json({ jobs: await listJobs(probePool, wallet.toLowerCase()) });
  });
  admin.post("/reconcile", async (c) => {
    if (loop.state.role !== "leader") return c.json({ error: "this sidecar is standby; ask the leader" }, 409);
    const result = await loop.requestReconcile().catch((error: unknown) => ({ failed: error }));
    if ("failed" in result) {
      const [status, error] = reconcileNotDone(result.failed);
      if (status === 500) {
        metrics.syncErrors.inc({ kind: "http" });
        log.warn({ err: errorText(result.failed) }, "the reconciliation asked for failed");
      } else if (status === 503) c.header("Retry-After", "10");
      return c.json({ error }, status);
    }
    return c.json({ drifted: result.drifted, changed: result.changes.length });
  });
  app.route("/admin", admin);

  // Database error text stays in the log (redacted): an answer says only that it failed.
  app.onError((error, c) => {
    metrics.syncErrors.inc({ kind: "http" });
    log.warn({ path: c.req.path, err: errorText(error) }, "HTTP request failed");
    return c.json({ error: "internal error; see the sidecar's log" }, 500);
  });
  return app;
}

/** `?after=` and `?limit=` of a paged answer (1–500, default 100): the page, or what is wrong with them. */
function pageQuery(after = "0", limit = "100", idName: string): { after: bigint; limit: number } | { error: string } {
  if (!/^\d{1,18}$/.test(after)) return { error: `after must be ${idName} (a whole number)` };
  if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 500) {
    return { error: "limit must be a whole number from 1 to 500" };
  }
  return { after: BigInt(after), limit: Number(limit) };
}

/**
 * Why a reconciliation asked for did not get done, as an answer: 409 when this sidecar stood down
 * (another leads), 503 while something the operator waits out holds it (the developers table, a
 * frozen Ponder's lock, Ponder's tables, the database), else 500. It stays due: the next round
 * that gets through runs it. Before, each was a bare 500, and the reconciliation was dropped.
 */
export function reconcileNotDone(error: unknown): [409 | 503 | 500, string] {
  const message = error instanceof Error ? error.message : String(error);
  const later = "the reconciliation runs once the sync goes on; ask again to see its outcome";
  if (message === LEADERSHIP_LOST)
    return [409, "this sidecar stood down before the reconciliation ran; ask the leader"];
  if (message === WRITE_WAITS || developersBusy(error)) {
    return [503, `the developers table is held by another session's lock (an application's migration?): ${later}`];
  }
  if (message === PONDER_NOT_THERE) return [503, `Ponder's tables are not there yet: ${later}`];
  const kind = classify(error);
  // "ponder": its tables missing, or a lock of Ponder's that outlasted the wait (55P03).
  if (kind === "ponder") {
    return [
      503,
      `Ponder's tables cannot be read now (Ponder down, re-indexing, or frozen inside a transaction): ${later}`,
    ];
  }
  if (kind === "database") return [503, `the database cannot be reached now: ${later}`];
  return [500, "the reconciliation's round failed; see the sidecar's log. It runs again at the next round"];
}

/**
 * Whether Ponder is up: its /health answers and its heartbeat in `_ponder_meta` is fresh.
 * Every sidecar observes it once a second (a standby's /ready needs it as much as the leader's
 * alert). A problem counts only once it has lasted INDEXER_DOWN_AFTER_MS: `npm run dev` and a
 * process manager start Ponder and the sidecar together, and a Ponder that is still building is
 * not down. The `indexer_down` alert, `/ready` and `stakesync_indexer_up` all read `down()`.
 */
import type pg from "pg";
import type { SidecarConfig } from "../lib/config";
import { fetchUrl, shownUrl } from "../lib/fetch-url";
import { answeredWithin } from "../lib/wait";
import { lastRows } from "./db/together";
import { LOCK_NOT_AVAILABLE } from "./sync/sql/read-progress";
import { LOCK_WAIT_MS } from "./sync/sql/read-sources";

const HEARTBEAT_STALE_MS = 30_000; // Ponder beats every 10 s and gives up a lock after 25 s

export class IndexerWatch {
  private problem: string | null = null;
  private since: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private beat: string | null = null;
  private beatMovedAt = Date.now();
  /** When the heartbeat was first read, and whether one read since differed: only then is a fresh beat seen live. */
  private watchedSince: number | null = null;
  private beatMoved = false;
  private running: Promise<void> | undefined;
  private observed = false;

  constructor(
    private readonly config: Pick<SidecarConfig, "ponderUrl" | "ponderSchema" | "indexerDownAfterMs">,
    private readonly pool: pg.Pool,
  ) {}

  start(intervalMs = 1000) {
    const tick = () => {
      this.running ??= this.observe().finally(() => {
        this.running = undefined;
      });
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
  }

  async stop() {
    clearInterval(this.timer);
    await this.running;
  }

  /** Looks once; a problem keeps the time it was first seen until Ponder answers well again. */
  async observe(now = Date.now()) {
    const problem = await this.check(now);
    if (problem === null) this.since = null;
    else this.since ??= now;
    this.problem = problem;
    this.observed = true;
  }

  /**
   * Whether down() is a verdict: Ponder seen answering well at the last look, or a problem that
   * has lasted. Not before the first look, nor while a problem has lasted less than
   * INDEXER_DOWN_AFTER_MS: a new leader then keeps an indexer_down page it adopted (monitor.ts),
   * instead of resolving it at its first check and paging it again once the problem has lasted.
   */
  judged(now = Date.now()): boolean {
    if (!this.observed) return false;
    if (this.problem !== null) return this.down(now) !== null;
    // Up: once its heartbeat has moved, or stood still for less than HEARTBEAT_STALE_MS of
    // watching. A first read counts as a beat just now, so a Ponder whose /health answers and
    // whose heartbeat stopped looked up for that long, and a page adopted for it was resolved.
    return this.beatMoved || now - (this.watchedSince ?? now) >= HEARTBEAT_STALE_MS;
  }

  /** The problem once it has lasted INDEXER_DOWN_AFTER_MS; null while Ponder is up or starting. */
  down(now = Date.now()): string | null {
    return this.since !== null && now - this.since >= this.config.indexerDownAfterMs ? this.problem : null;
  }

  private async check(now: number): Promise<string | null> {
    const { ponderUrl, ponderSchema } = this.config;
    const health = await fetchUrl(`${ponderUrl}/health`, { signal: AbortSignal.timeout(2000) }).catch(
      (error: Error) => error,
    );
    // Shown on /ready, /status, the status page and in the alert: never the URL's password.
    if (health instanceof Error) return `${shownUrl(ponderUrl)}/health unreachable`;
    if (!health.ok) return `${shownUrl(ponderUrl)}/health answered ${health.status}`;
    // Bounded: a frozen database must not hold this look (and a SIGTERM waiting for it) forever.
    const read = await answeredWithin(
      lastRows<{ beat: string | null }>(this.pool, [
        // Its checkpoint too, as the sync reads it: a reorg or crash recovery locks it exclusively
        // until its transaction ends, which a Ponder frozen inside one never does. Its /health
        // may still answer (a database session lost mid-transaction, that the server keeps).
        `SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms'`,
        `SELECT FROM "${ponderSchema}"._ponder_checkpoint LIMIT 0`,
        `SELECT value->>'heartbeat_at' AS beat FROM "${ponderSchema}"._ponder_meta WHERE key = 'app'`,
      ]),
      2000,
    ).catch((error: Error) => error);
    if ((read as { code?: string }).code === LOCK_NOT_AVAILABLE) {
      return "Ponder's tables stay locked: a reorg or crash recovery that does not end (Ponder frozen inside it?)";
    }
    // Not Ponder's fault, and said as such: the database, a grant, a views schema without
    // _ponder_meta. By its SQLSTATE: this text is /ready's reason, /status's and the status
    // page's, and answers carry no database error text (a message may quote a row's values).
    if (read instanceof Error) {
      const code = (read as { code?: unknown }).code;
      return `cannot read Ponder's heartbeat (${typeof code === "string" ? `SQLSTATE ${code}` : "no answer"})`;
    }
    // Whether the heartbeat moves, timed on this host's clock: a clock skew between Ponder's host
    // and this one must not make a live Ponder look stale (or a dead one fresh).
    const beat = read[0]?.beat ?? null;
    const first = this.watchedSince === null;
    this.watchedSince ??= now;
    if (beat !== this.beat || first) {
      if (!first) this.beatMoved = true;
      this.beat = beat;
      this.beatMovedAt = now;
    }
    return now - this.beatMovedAt > HEARTBEAT_STALE_MS ? "heartbeat stale" : null;
  }
}

/**
 * Whether Ponder is up: its /health answers and its heartbeat in `_ponder_meta` is fresh.
 * Every sidecar observes it once a second (a standby's /ready needs it as much as the leader's
 * alert). A problem counts only once it has lasted INDEXER_DOWN_AFTER_MS: `npm run dev` and a
 * process manager start Ponder and the sidecar together, and a Ponder that is still building is
 * not down. The `indexer_down` alert, `/ready` and `stakesync_indexer_up` all read `down()`.
 */
import type pg from "pg";
import type { SidecarConfig } from "../lib/config";

const HEARTBEAT_STALE_MS = 30_000; // Ponder beats every 10 s and gives up a lock after 25 s

export class IndexerWatch {
  private problem: string | null = null;
  private since: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

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
    const problem = await this.check();
    if (problem === null) this.since = null;
    else this.since ??= now;
    this.problem = problem;
  }

  /** The problem once it has lasted INDEXER_DOWN_AFTER_MS; null while Ponder is up or starting. */
  down(now = Date.now()): string | null {
    return this.since !== null && now - this.since >= this.config.indexerDownAfterMs ? this.problem : null;
  }

  private async check(): Promise<string | null> {
    const { ponderUrl, ponderSchema } = this.config;
    const health = await fetch(`${ponderUrl}/health`, { signal: AbortSignal.timeout(2000) }).catch(
      (error: Error) => error,
    );
    if (health instanceof Error) return `${ponderUrl}/health unreachable`;
    if (!health.ok) return `${ponderUrl}/health answered ${health.status}`;
    const { rows } = await this.pool
      .query<{ beat: string }>(
        `SELECT value->>'heartbeat_at' AS beat FROM "${ponderSchema}"._ponder_meta WHERE key = 'app'`,
      )
      .catch(() => ({ rows: [] as { beat: string }[] }));
    const beat = Number(rows[0]?.beat ?? 0);
    return Date.now() - beat > HEARTBEAT_STALE_MS ? "heartbeat stale" : null;
  }
}

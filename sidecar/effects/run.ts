/**
 * Runs the outbox worker and the alert rules, each once a second, on every sidecar: the rules
 * and the sends while it leads; leader or not, the records of sends, the outbox probe, its own
 * `database_unreachable` page and the announcement of its settings.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import type { IndexerWatch } from "../indexer-watch";
import { errorText } from "../redact";
import { announceSettings, sidecarName, withdrawSettings } from "../settings";
import { readStatus } from "../status";
import type { SyncLoop } from "../sync/loop";
import type { Alerts } from "./alerts";
import { type AlertMonitor, checkUnreachable } from "./monitor";
import { PauseWatch } from "./pause-watch";
import type { OutboxWorker } from "./worker";

/** How often a sidecar refreshes its entry in stakesync.sidecar (a sidecar not seen for 30 s is gone). */
const ANNOUNCE_MS = 5000;

export function startEffects(deps: {
  config: SidecarConfig;
  pool: pg.Pool;
  heads: Map<number, Head>;
  indexer: IndexerWatch;
  loop: SyncLoop;
  worker: OutboxWorker;
  monitor: AlertMonitor;
  alerts: Alerts;
  /** This sidecar's own, evaluated leader or not: the database out of its reach (checkUnreachable). */
  ownAlerts: Alerts;
  log: Logger;
  /** Whether this process was just stopped (its own, started here, unless given). */
  pauses?: PauseWatch;
}) {
  const { config, pool, heads, indexer, loop, worker, monitor, alerts, ownAlerts, log } = deps;
  const pauses = deps.pauses ?? new PauseWatch().start();
  // Two ticks, each waiting only for its own work: an email due must not wait for the alert
  // rules' reads, nor a page for an SMTP server that takes seconds to answer.
  const sending = every(1000, async () => {
    // Shadow mode sends nothing (and a write-mode job left from before waits for write mode).
    if (config.mode !== "write") return;
    // Leader or not: the worker first records the emails it sent whose record failed, and it
    // claims and sends only while this sidecar leads (worker.ts).
    await worker.tick(loop.state);
  });
  let announcedAt = 0;
  const alerting = every(1000, async () => {
    if (loop.state.role !== "leader") {
      monitor.standDown();
      alerts.standDown();
    }
    // Leader or not, and before anything that needs the database: it is what may be missing.
    checkUnreachable(ownAlerts, config, loop.state.unreachable, sidecarName(config));
    // Leader or not, every few seconds: what this sidecar would write with (settings.ts).
    if (Date.now() - announcedAt >= ANNOUNCE_MS) {
      announcedAt = Date.now();
      await announceSettings(pool, config).catch((error: unknown) =>
        log.debug({ err: errorText(error) }, "could not announce this sidecar's settings; next time"),
      );
    }
    if (loop.state.role !== "leader") return;
    const term = loop.state.leaderPid;
    await alerts.adopt();
    const status = await readStatus(pool, config, heads, indexer.down(), loop.state);
    // The term may have ended during the reads: a standby's state (no errors) would resolve the
    // pages, and delete them from what the next leader adopts.
    if (loop.state.role !== "leader" || loop.state.leaderPid !== term) return;
    // Checked last: a tick stopped with the process, in the middle of its reads, goes on here.
    if (pauses.settling()) return;
    await monitor.check(status, loop.state, indexer.judged());
  });
  function every(intervalMs: number, work: () => Promise<void>) {
    let running: Promise<void> | undefined;
    const tick = () => {
      running ??= work()
        .catch((error: unknown) => log.warn({ err: errorText(error) }, "effects tick failed; retrying"))
        .finally(() => {
          running = undefined;
        });
    };
    const timer = setInterval(tick, intervalMs);
    return async () => {
      clearInterval(timer);
      await running;
    };
  }
  return async () => {
    worker.stop();
    pauses.stop();
    await Promise.all([sending(), alerting()]);
    await worker.close();
    // Gone at once from the other sidecars' comparisons, not 30 s later.
    await withdrawSettings(pool).catch((error: unknown) =>
      log.warn({ err: errorText(error) }, "could not withdraw this sidecar's settings"),
    );
  };
}

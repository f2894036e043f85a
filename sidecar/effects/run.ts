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
import { holdsLeaderLock } from "../leader";
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
  /**
   * The term whose rules the last tick read; null while a standby. By the loop's count of its
   * terms, not its pid alone: a term that ended and began again between two ticks with the same
   * pid (on another server after a failover: pids repeat) is another term.
   */
  let lastTerm: string | null = null;
  const termOf = () =>
    loop.state.role === "leader" && loop.state.leaderPid !== null
      ? `${loop.state.terms ?? 0}:${loop.state.leaderPid}`
      : null;
  const alerting = every(1000, async () => {
    // A new term also when one began after another ended between two ticks: what the last one
    // saw is not this one's, and its writes were fenced by the last one's lock (alerts.ts).
    if (loop.state.role !== "leader" || termOf() !== lastTerm) {
      monitor.standDown();
      alerts.standDown();
      lastTerm = null;
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
    const term = loop.state.leaderPid;
    const server = loop.state.leaderServer ?? null;
    if (loop.state.role !== "leader" || term === null) return;
    lastTerm = termOf();
    await alerts.adopt(term, server);
    // Every read the rules judge, Ponder's /metrics too, before any rule is judged: check() waits
    // for nothing, so that what is confirmed next still holds while it runs.
    const [status, ponder] = await Promise.all([
      readStatus(pool, config, heads, indexer.down(), loop.state),
      monitor.readPonder(),
    ]);
    // Still this term's lock, asked of the server after the reads: a leader frozen during them
    // (SIGSTOP) thaws believing it leads until its loop hears that its session ended, and the
    // answers waiting for it may come before the late timers that tell PauseWatch of the pause.
    // Judged on, its rules repeated a page another leader had adopted (alerts.ts).
    if (!(await holdsLeaderLock(pool, term, server ?? undefined))) return;
    // The term may have ended during the reads: a standby's state (no errors) would resolve the
    // pages, and delete them from what the next leader adopts.
    if (loop.state.role !== "leader" || termOf() !== lastTerm) return;
    // Checked last: a tick stopped with the process, in the middle of its reads, goes on here.
    if (pauses.settling()) return;
    monitor.check(status, loop.state, indexer.judged(), ponder);
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

/** Runs the outbox worker and the alert rules once a second while this sidecar leads. */
import type pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import type { IndexerWatch } from "../indexer-watch";
import { readStatus } from "../status";
import type { SyncLoop } from "../sync/loop";
import type { Alerts } from "./alerts";
import type { AlertMonitor } from "./monitor";
import type { OutboxWorker } from "./worker";

export function startEffects(deps: {
  config: SidecarConfig;
  pool: pg.Pool;
  heads: Map<number, Head>;
  indexer: IndexerWatch;
  loop: SyncLoop;
  worker: OutboxWorker;
  monitor: AlertMonitor;
  alerts: Alerts;
  log: Logger;
}) {
  const { config, pool, heads, indexer, loop, worker, monitor, alerts, log } = deps;
  let running: Promise<void> | undefined;
  const tick = async () => {
    if (loop.state.role !== "leader") {
      monitor.standDown();
      return alerts.standDown();
    }
    try {
      // Shadow mode sends nothing (and a write-mode job left from before waits for write mode).
      if (config.mode === "write") await worker.tick(loop.state);
      await alerts.adopt();
      await monitor.check(await readStatus(pool, config, heads, indexer.down(), loop.state), loop.state);
    } catch (error) {
      log.warn({ err: (error as Error).message }, "effects tick failed; retrying");
    }
  };
  const timer = setInterval(() => {
    running ??= tick().finally(() => {
      running = undefined;
    });
  }, 1000);
  return async () => {
    clearInterval(timer);
    await running;
    worker.close();
  };
}

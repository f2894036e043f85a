/** Prometheus metrics with the names the README lists, on a registry of the sidecar's own. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Every kind stakesync_sync_errors_total counts. */
export const ERROR_KINDS = ["database", "ponder", "sync", "rpc", "email", "http"] as const;

/**
 * The sidecar's registry. With `chainIds`, the counters start at 0 for every chain and error kind:
 * a series that appears only at its first increment breaks rate() and absent() alerts.
 */
export function createMetrics(chainIds: number[] = []) {
  const registry = new Registry();
  const r = { registers: [registry] };
  // Memory, CPU, event loop lag and the Node.js version, as Ponder exports them too.
  collectDefaultMetrics({ register: registry });
  const metrics = {
    registry,
    eventsSynced: new Counter({
      name: "stakesync_events_synced_total",
      help: "Confirmed events applied",
      labelNames: ["chain_id"],
      ...r,
    }),
    syncErrors: new Counter({
      name: "stakesync_sync_errors_total",
      help: "Errors by kind",
      labelNames: ["kind"],
      ...r,
    }),
    lastSyncedBlock: new Gauge({
      name: "stakesync_last_synced_block",
      help: "Cursor block per chain",
      labelNames: ["chain_id"],
      ...r,
    }),
    lagBlocks: new Gauge({
      name: "stakesync_lag_blocks",
      help: "Chain head minus synced block",
      labelNames: ["chain_id"],
      ...r,
    }),
    syncLatency: new Histogram({
      name: "stakesync_sync_latency_seconds",
      help: "Block time of a developer's latest event to the commit of its change",
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300],
      ...r,
    }),
    stepDuration: new Histogram({
      name: "stakesync_sync_step_seconds",
      help: "One sync step's transaction, including steps that changed nothing",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ...r,
    }),
    outboxPending: new Gauge({ name: "stakesync_outbox_pending", help: "Outbox jobs waiting", ...r }),
    outboxDead: new Gauge({ name: "stakesync_outbox_dead", help: "Outbox jobs dead-lettered", ...r }),
    emailsSent: new Counter({ name: "stakesync_emails_sent_total", help: "Welcome emails sent", ...r }),
    alerts: new Counter({ name: "stakesync_alerts_total", help: "Alerts raised", labelNames: ["rule"], ...r }),
    reorgCorrections: new Counter({
      name: "stakesync_reorg_corrections_total",
      help: "Developers corrected after a reorg deeper than CONFIRMATIONS",
      ...r,
    }),
    isLeader: new Gauge({ name: "stakesync_is_leader", help: "1 while this sidecar holds the leader lock", ...r }),
  };
  for (const chainId of chainIds) metrics.eventsSynced.inc({ chain_id: chainId }, 0);
  for (const kind of ERROR_KINDS) metrics.syncErrors.inc({ kind }, 0);
  metrics.isLeader.set(0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

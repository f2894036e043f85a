/** Prometheus metrics with the names the README lists, on a registry of the sidecar's own. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Head } from "./chain-heads";
import type { Rule } from "./effects/alerts";
import type { Status } from "./status";
import type { LoopState } from "./sync/loop";
import type { PlainStop } from "./sync/step";

/** Every kind stakesync_sync_errors_total counts. */
export const ERROR_KINDS = ["database", "ponder", "sync", "rpc", "email", "http", "webhook"] as const;

/** Every rule the sidecar evaluates (README "Alerts"); stakesync_alert_firing has a series for each. */
export const RULES: Rule[] = [
  "indexer_down",
  "lag",
  "consecutive_errors",
  "rpc_failing",
  "dead_letter",
  "developers_refused",
  "reorg_correction",
  "settings_differ",
  "database_unreachable",
];

/**
 * The sidecar's registry. With `chainIds`, the counters start at 0 for every chain and error kind:
 * a series that appears only at its first increment breaks rate() and absent() alerts.
 */
export function createMetrics(chainIds: number[] = []) {
  const registry = new Registry();
  const r = { registers: [registry] };
  // Memory, CPU, event loop lag and the Node.js version, as Ponder exports them too.
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` rejects; nodejs_active_handles and
  // nodejs_active_requests (by type) say the same.
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
    registry.removeSingleMetric(name);
  }
  const metrics = {
    registry,
    eventsSynced: new Counter({
      name: "stakesync_events_synced_total",
      help: "Confirmed events applied",
      labelNames: ["chain_id"],
      ...r,
    }),
    databaseOutages: new Counter({
      name: "stakesync_database_outages_total",
      help: "Times this sidecar lost its database (a term ended by it, or a try to lead that could not reach it, after the last that could), however long each lasted",
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
    headTime: new Gauge({
      name: "stakesync_head_timestamp_seconds",
      help: "Unix time at which this sidecar last read the chain's head over RPC",
      labelNames: ["chain_id"],
      ...r,
    }),
    headBlock: new Gauge({
      name: "stakesync_head_block",
      help: "Chain head: the larger of the sidecar's own poll and Ponder's indexed block",
      labelNames: ["chain_id"],
      ...r,
    }),
    indexedBlock: new Gauge({
      name: "stakesync_ponder_indexed_block",
      help: "The block up to which the sidecar trusts Ponder's rows per chain: its latest checkpoint's once ready, the block before its safe checkpoint's while not",
      labelNames: ["chain_id"],
      ...r,
    }),
    indexerUp: new Gauge({
      name: "stakesync_indexer_up",
      help: "0 once Ponder's /health or heartbeat has failed for INDEXER_DOWN_AFTER_MS, else 1",
      ...r,
    }),
    consecutiveErrors: new Gauge({
      name: "stakesync_consecutive_sync_errors",
      help: "Sync steps failed in a row (0 after a success)",
      ...r,
    }),
    lastSyncTime: new Gauge({
      name: "stakesync_last_sync_timestamp_seconds",
      help: "Unix time of this sidecar's last successful sync step (0: none yet)",
      ...r,
    }),
    developersQueued: new Gauge({
      name: "stakesync_developers_queued",
      help: "Developers rows synced from Ponder and not yet written (an application transaction holds them); 0 in shadow mode",
      ...r,
    }),
    developersUnwritten: new Gauge({
      name: "stakesync_developers_unwritten",
      help: "Developers whose stake a catch-up step synced while Ponder backfills, written by the step that ends the backfill",
      ...r,
    }),
    developersRefused: new Gauge({
      name: "stakesync_developers_refused",
      help: "Developers rows the database refused, dead-lettered",
      ...r,
    }),
    developersRefusedLastHour: new Gauge({
      name: "stakesync_developers_refused_last_hour",
      help: "Developers rows the database refused for the first time in the last hour, not yet written (many: a rule refusing every row); 0 in shadow mode",
      ...r,
    }),
    settingsDiffer: new Gauge({
      name: "stakesync_settings_differ",
      help: "Settings that decide what is written (MIN_STAKE, STAKE_DECIMALS, …) in which a live sidecar differs from this one",
      ...r,
    }),
    ponderNotDurable: new Gauge({
      name: "stakesync_ponder_not_durable",
      help: "Ponder schemas whose commits this leader could not make durable (no TRIGGER privilege on their stake_event): a PostgreSQL crash may lose their last blocks; 0 on a standby",
      ...r,
    }),
    developersDiffering: new Gauge({
      name: "stakesync_developers_differing",
      help: "Shadow mode: developers rows a write would change (stakesync plan lists them)",
      ...r,
    }),
    developersByStatus: new Gauge({
      name: "stakesync_developers",
      help: "Rows of the developers table by status",
      labelNames: ["status"],
      ...r,
    }),
    alertFiring: new Gauge({
      name: "stakesync_alert_firing",
      help: "1 while the sidecar's alert rule fires (evaluated on the leader; database_unreachable on every sidecar, for itself)",
      labelNames: ["rule"],
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
    plainStops: new Counter({
      name: "stakesync_sync_plain_stops_total",
      help: "Realtime blocks whose one round trip was stopped and stepped again the usual way, by reason",
      labelNames: ["reason"],
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
    lastReorgCorrectionTime: new Gauge({
      name: "stakesync_last_reorg_correction_timestamp_seconds",
      help: "Unix time of the last correction of developers after a reorg deeper than CONFIRMATIONS, from the audit (0: none)",
      ...r,
    }),
    isLeader: new Gauge({ name: "stakesync_is_leader", help: "1 while this sidecar holds the leader lock", ...r }),
    statusReadOk: new Gauge({
      name: "stakesync_status_read_ok",
      help: "1 when this scrape read the sidecar's status from the database; 0: the gauges mirrored from it keep their last values",
      ...r,
    }),
  };
  for (const chainId of chainIds) metrics.eventsSynced.inc({ chain_id: chainId }, 0);
  for (const kind of ERROR_KINDS) metrics.syncErrors.inc({ kind }, 0);
  for (const reason of ["event_gone", "events", "error"] satisfies PlainStop[]) metrics.plainStops.inc({ reason }, 0);
  // Every rule's counter from 0, so that increase() sees its first alert after a restart.
  for (const rule of RULES) metrics.alerts.inc({ rule }, 0);
  for (const rule of RULES) metrics.alertFiring.set({ rule }, 0);
  for (const status of ["pending", "active", "inactive"]) metrics.developersByStatus.set({ status }, 0);
  metrics.isLeader.set(0);
  metrics.lastSyncTime.set(0);
  return metrics;
}

/**
 * The gauges that mirror the loop's own state, set at every scrape, whether or not the status
 * read (which carries the same values) succeeds: a sidecar that lost its database kept its old
 * count of errors, and a healthy leader's last sync time froze with its reads.
 */
export function observeLoop(metrics: Metrics, loop: Pick<LoopState, "consecutiveErrors" | "lastSyncAt">) {
  metrics.consecutiveErrors.set(loop.consecutiveErrors);
  if (loop.lastSyncAt) metrics.lastSyncTime.set(Date.parse(loop.lastSyncAt) / 1000);
}

/** The gauges that mirror a status read, set when /metrics is scraped. */
export function observeStatus(
  metrics: Metrics,
  status: Status,
  byStatus: Record<string, number> | undefined,
  heads: Map<number, Head>,
  mode: "write" | "shadow" = "write",
) {
  for (const [chainId, head] of heads) {
    if (head) metrics.headTime.set({ chain_id: chainId }, head.at / 1000);
  }
  for (const chain of status.chains) {
    const labels = { chain_id: chain.chainId };
    metrics.lastSyncedBlock.set(labels, chain.synced);
    // Unknown (no head polled within HEAD_STALE_MS): no value, rather than the last one, which
    // showed a small lag through an outage of the RPC.
    if (chain.lagBlocks !== null) metrics.lagBlocks.set(labels, chain.lagBlocks);
    else metrics.lagBlocks.remove(labels);
    if (chain.head !== null) metrics.headBlock.set(labels, chain.head);
    else metrics.headBlock.remove(labels);
    // Unknown (Ponder's tables locked or unreadable): no value, as for the lag and the head.
    if (chain.indexed !== null) metrics.indexedBlock.set(labels, chain.indexed);
    else metrics.indexedBlock.remove(labels);
  }
  metrics.indexerUp.set(status.indexer === null ? 1 : 0);
  metrics.outboxPending.set(status.outbox.pending);
  metrics.outboxDead.set(status.outbox.dead);
  // Shadow mode writes nothing: its queue holds every difference for the cut-over (`stakesync
  // plan`), not rows waiting to be written, and refusals from before a switch to it are no page.
  const writing = mode === "write";
  metrics.developersQueued.set(writing ? status.developers.queued : 0);
  metrics.developersUnwritten.set(status.developers.unwritten);
  metrics.developersRefused.set(status.developers.refused);
  metrics.developersRefusedLastHour.set(writing ? status.developers.refusedLastHour : 0);
  metrics.settingsDiffer.set(status.settingsDiffer.length);
  metrics.ponderNotDurable.set(status.ponderNotDurable.length);
  // From the database, on every sidecar: the counter above, in one process's memory, began at 1
  // on a sidecar that corrected before its first scrape, and increase() saw no correction.
  const reorgAt = status.lastReorgCorrectionAt;
  metrics.lastReorgCorrectionTime.set(reorgAt === null ? 0 : Date.parse(reorgAt) / 1000);
  if (byStatus) {
    // A status that no row has any more reads 0 (the sidecar's own three) or goes (one of the
    // application's), not its last count.
    metrics.developersByStatus.reset();
    for (const status of ["pending", "active", "inactive"]) metrics.developersByStatus.set({ status }, 0);
    for (const [value, count] of Object.entries(byStatus)) metrics.developersByStatus.set({ status: value }, count);
  }
}

export type Metrics = ReturnType<typeof createMetrics>;

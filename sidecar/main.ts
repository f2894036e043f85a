/**
 * The sidecar process: migrations, the leader loop (sync, reconcile, effects) and HTTP.
 * Every sidecar serves HTTP; only the one holding the leader lock writes.
 */
// Its launchers (scripts/start.ts, scripts/dev.ts) check Node.js first, with one line. Run on its
// own on an older Node.js, the check here may come too late: the bundle's imports are linked first.
import "../lib/require-node.mjs";
import { serve } from "@hono/node-server";
import pg from "pg";
import { backoffMs } from "../lib/backoff";
import { exitOnConfigError, loadSidecarConfig, orExit, reportConfigError } from "../lib/config";
import { watchHeads } from "./chain-heads";
import { DevelopersTableError, rowSecurityActive } from "./db/developers-table";
import { migrate, ServerVersionError } from "./db/migrate";
import { CONNECT_MS, createPools, KEEPALIVE_MS } from "./db/pools";
import { lastRows } from "./db/together";
import { Alerts } from "./effects/alerts";
import { AlertMonitor, checkUnreachable } from "./effects/monitor";
import { startEffects } from "./effects/run";
import { OutboxWorker } from "./effects/worker";
import { SHORT_ADMIN_TOKEN } from "./http/admin-auth";
import { createApp } from "./http/app";
import { IndexerWatch } from "./indexer-watch";
import { createLogger } from "./log";
import { createMetrics } from "./metrics";
import { errorText } from "./redact";
import { sidecarName } from "./settings";
import { SyncLoop } from "./sync/loop";
import { cursorsStatements } from "./sync/sql/read-cursors";
import { checkAgainUntilDecided, checkVaults, type VaultCheck } from "./vault-check";

const config = orExit(() => loadSidecarConfig(process.env));
const log = createLogger(config.logLevel);
const metrics = createMetrics(config.chains.map((c) => c.id));

const { pool, httpPool, probePool, confirmPool } = createPools(config, log);

const heads = watchHeads(config.chains, log, () => metrics.syncErrors.inc({ kind: "rpc" }));
/**
 * How long the sync waits at start for the vault's check (vault-check.ts), asked at once, beside
 * the database's preparation: a provider answers it in milliseconds; a slow or absent one must
 * not hold the sync (the check goes on, and still stops a wrong configuration when it answers).
 */
const VAULT_CHECK_WAIT_MS = 2000;
/** The sync and its effects have started: a late answer of the vault's check stops them first. */
let started = false;
/**
 * The re-checks of checks the provider left undone (vault-check.ts checkAgainUntilDecided), stopped
 * by shutdown. Declared before the check starts: its answer may come (and a SIGTERM too) while
 * the database is prepared, long before the lines below that await it.
 */
const checksAgain: (() => void)[] = [];
/**
 * No welcome before the check has answered (an answer that it could not be made counts), and
 * none at all after a "wrong", at start or at a later re-check (vaultsAre): a wrong STAKE_DECIMALS
 * activates dust (a threshold 10^12 times too small), the sync starts without waiting for a slow
 * provider's answer, and a welcome cannot be taken back.
 */
const worker = new OutboxWorker(config, pool, log, metrics);
const vaultChecks = checkVaults(config);
worker.holdSendsUntil(
  vaultChecks.then(
    (checks) => checks.every((check) => check.outcome !== "wrong"),
    () => true,
  ),
);
const vaultsChecked = vaultChecks.then(vaultsAre);
// Never an unhandled rejection (Node exits on one): what vaultsAre could throw is said.
vaultsChecked.catch((error: unknown) => log.error({ err: errorText(error) }, "the check of the configuration failed"));
const alertOptions = {
  webhookUrl: config.alertWebhookUrl,
  repeatMs: config.alertRepeatMs,
  retry: { attempts: config.retryAttempts, delayMs: config.retryDelayMs },
  log,
  metrics,
};
const alerts = new Alerts({ ...alertOptions, db: pool });
/** The database out of this sidecar's reach, which it pages itself (checkUnreachable). */
const ownAlerts = new Alerts(alertOptions);
/** Tries to prepare the database that could not reach it, in a row (`unprepared`). */
let unreachable = { tries: 0, error: null as string | null };
const indexer = new IndexerWatch(config, pool);
indexer.start();
const monitor = new AlertMonitor(config, heads.heads, alerts);
// No onChanges hook for reorg_correction: the rule reads the audit (status.ts), which a leader
// that crashed after its correction cannot take with it.
const loop = new SyncLoop(config, log, metrics, heads.heads, { confirmOver: confirmPool });

const app = createApp({ config, pool: httpPool, probePool, heads: heads.heads, indexer, loop, metrics, alerts, log });
if (config.adminToken !== undefined && config.adminToken.length < SHORT_ADMIN_TOKEN) {
  log.warn(
    `ADMIN_TOKEN has fewer than ${SHORT_ADMIN_TOKEN} characters: guessable; use a random one (openssl rand -hex 32)`,
  );
}
const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, ({ port }) =>
  log.info({ port, chains: config.chains.map((c) => c.id), ponder_schema: config.ponderSchema }, "sidecar listening"),
);

// Heard from the start: a stop while the database is being prepared (unreachable, or a long
// migration, which rolls back) is a stop, exit 0, not a death by signal.
let stopping = false;
let stopEffects: (() => Promise<void>) | undefined;
async function shutdown(signal: string, exitCode = 0) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping");
  heads.stop();
  for (const stop of checksAgain) stop();
  server.close();
  await indexer.stop();
  // The effects first, while this sidecar still leads: the worker claims nothing more, and the
  // send under way ends and is recorded before the lead goes to the standby.
  await stopEffects?.();
  await loop.stop();
  // The webhook's last words (a "resolved" under way): a few seconds at most, a stop is a stop.
  await Promise.race([
    Promise.all([alerts.delivered(), ownAlerts.delivered()]),
    new Promise((resolve) => setTimeout(resolve, 5000)),
  ]);
  await Promise.all([pool.end(), httpPool.end(), probePool.end(), confirmPool.end()]).catch(() => undefined);
  process.exit(exitCode);
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));

// HTTP answers from the first second (a liveness probe must not restart a sidecar that waits for
// its database); the sync and its effects start once the database is prepared.
await prepareDatabase();
const waitedFrom = performance.now();
const checked = await Promise.race([
  vaultsChecked.then(() => true),
  new Promise<false>((resolve) => setTimeout(() => resolve(false), VAULT_CHECK_WAIT_MS)),
]);
if (!checked) {
  log.warn(
    { waited_ms: Math.round(performance.now() - waitedFrom) },
    "no answer yet to the check of STAKE_VAULT_ADDRESS and START_BLOCK; syncing meanwhile (a wrong configuration still stops the sidecar when it answers)",
  );
}
if (!stopping) {
  started = true;
  loop.start();
  stopEffects = startEffects({
    config,
    pool,
    heads: heads.heads,
    indexer,
    loop,
    worker,
    monitor,
    alerts,
    ownAlerts,
    log,
  });
}

/**
 * A wrong configuration stops the sidecar: at once before the sync starts; after, as a SIGTERM
 * does (the send under way finished and recorded), exit 1. A check the provider left undone is said.
 */
function vaultsAre(checks: VaultCheck[]) {
  for (const check of checks) {
    if (check.unanswered && check.outcome !== "wrong") {
      log.warn(
        { chain_id: check.chainId, unanswered: check.unanswered },
        "RPC URLs that did not answer eth_chainId at start: not known to be of this chain",
      );
    }
    if (check.outcome === "wrong") {
      worker.holdSends();
      if (!started) exitOnConfigError(check.reason);
      reportConfigError(check.reason);
      void shutdown("configuration error", 1);
      return;
    }
    if (check.outcome === "unchecked") {
      log.warn(
        { chain_id: check.chainId, err: check.reason },
        "could not check STAKE_VAULT_ADDRESS and START_BLOCK against the chain; going on without, and asking again later (stakesync verify compares developers with the chain)",
      );
      checkAgain(check.chainId);
    }
  }
}

function checkAgain(chainId: number) {
  const chain = config.chains.find((c) => c.id === chainId);
  if (!chain || stopping) return;
  checksAgain.push(checkAgainUntilDecided(chain, config.stakeDecimals, (check) => vaultsAre([check])));
}

/** Migrations and the developers table; waits for the database rather than exiting. */
async function prepareDatabase() {
  for (let attempt = 1; !stopping; attempt++) {
    // A connection of its own, not the effects' pool's: a migration (an index on a large
    // developers table; a lock the application holds) may rightly take longer than that pool's
    // EFFECTS_QUERY_MS.
    const client = await connectOnce(config.database.url, "stakesync_sidecar_migrate");
    if (!(client instanceof Error)) {
      try {
        await migrate(client, config.developersTable, log);
        await warnOfUnlistedChains(client);
        if (await rowSecurityActive(client, config.developersTable)) {
          log.warn(
            { table: config.developersTable.sql },
            "row-level security applies to the sidecar's role on the developers table: rows its policies hide are not synced, rows they refuse are dead letters (docs/operations.md, 'A developer that stays queued')",
          );
        }
        unprepared(undefined);
        return;
      } catch (error) {
        // A table that cannot hold what the sidecar writes is a configuration error: no retry.
        if (error instanceof DevelopersTableError || error instanceof ServerVersionError) {
          exitOnConfigError(error.message);
        }
        metrics.syncErrors.inc({ kind: "database" });
        log.warn({ err: errorText(error), attempt }, "database setup failed; retrying");
        unprepared(error);
      } finally {
        await client.end().catch(() => undefined);
      }
    } else {
      metrics.syncErrors.inc({ kind: "database" });
      log.warn({ err: errorText(client), attempt }, "database unreachable; retrying");
      unprepared(client);
    }
    await new Promise((resolve) => setTimeout(resolve, backoffMs(config.retryDelayMs, attempt)));
  }
}

/**
 * A sidecar started while its database is out of reach, or refuses it, pages that too, after as
 * many tries as the loop's (they come at the same pace: the preparation's backoff). A lock that
 * another session holds (55P03: another sidecar migrating, a leader's long step) is a wait, not
 * a failure: it starts the count again.
 */
function unprepared(error: unknown) {
  unreachable =
    error !== undefined && (error as { code?: string }).code !== "55P03"
      ? { tries: unreachable.tries + 1, error: errorText(error) }
      : { tries: 0, error: null };
  checkUnreachable(ownAlerts, config, unreachable, sidecarName(config));
}

/**
 * A chain synced before and no longer in CHAINS: its stakes stop counting in stake_amount at the
 * next reconciliation (this leader's first step), as in `stakesync verify`. Said once, at start,
 * since it may be a CHAINS edited by mistake; listed again, its stakes count again from its cursor.
 */
async function warnOfUnlistedChains(client: pg.Client) {
  const listed = new Set(config.chains.map((c) => c.id));
  const unlisted = ((await lastRows(client, cursorsStatements)) as { chain_id: number }[])
    .map((r) => r.chain_id)
    .filter((id) => !listed.has(id));
  if (unlisted.length === 0) return;
  log.warn(
    { chains: unlisted },
    "chains synced before are not in CHAINS: their stakes no longer count in stake_amount (list them again to count them)",
  );
}

/** A client of its own, connected, or the error that kept it from connecting. */
async function connectOnce(connectionString: string, applicationName: string): Promise<pg.Client | Error> {
  // Keepalives: a database host gone while a migration or an index build waits (as long as it
  // must) is noticed, and the start tries again; without them nothing ever came back.
  const client = new pg.Client({
    connectionString,
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_MS,
  });
  client.on("error", () => undefined); // a server gone while it is idle: its next query fails
  return client.connect().then(
    () => client,
    (error: Error) => error,
  );
}

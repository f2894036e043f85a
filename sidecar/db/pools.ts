/**
 * The sidecar's two pools of reads and small writes (the leader's own connection is leader.ts's).
 * Each session bounds its waits for locks: the application's DDL on developers, or a sidecar
 * migration queued behind a step, must not hold the alert rules, the outbox or an HTTP answer for
 * as long as it lasts, nor pile every request on a connection that waits (3 of them, and /ready
 * answered "database unreachable"). Set by SET at each connection: as startup parameters,
 * PgBouncer (session mode) would refuse them.
 */
import pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";

/** How long the effects' reads and writes (outbox, alerts, Ponder's heartbeat) and the migrations wait for a lock. */
export const EFFECTS_LOCK_WAIT_MS = 5000;
/** How long an HTTP answer's reads wait for a lock, and run at most. */
export const HTTP_LOCK_WAIT_MS = 1000;
export const HTTP_STATEMENT_MS = 10_000;

export function createPools(config: SidecarConfig, log: Logger) {
  const pool = bounded(
    new pg.Pool({ connectionString: config.database.url, max: 5, application_name: "stakesync_sidecar_read" }),
    `SET lock_timeout = ${EFFECTS_LOCK_WAIT_MS}`,
    log,
  );
  // HTTP reads through a pool of its own that gives up quickly: requests cannot starve the worker
  // and the alert rules of connections, and a database outage answers fast.
  const httpPool = bounded(
    new pg.Pool({
      connectionString: config.database.url,
      max: 3,
      connectionTimeoutMillis: 2000,
      application_name: "stakesync_sidecar_http",
    }),
    `SET lock_timeout = ${HTTP_LOCK_WAIT_MS}; SET statement_timeout = ${HTTP_STATEMENT_MS}`,
    log,
  );
  return { pool, httpPool };
}

function bounded(pool: pg.Pool, settings: string, log: Logger) {
  // Queued before the first query of the connection (pg runs a client's queries in order).
  pool.on("connect", (client) => {
    client.query(settings).catch(() => undefined);
  });
  // An idle client whose server went away must not crash the process; the pool replaces it.
  pool.on("error", (error) => log.warn({ err: error.message }, "idle database connection lost"));
  return pool;
}

/**
 * The sidecar's two pools of reads and small writes (the leader's own connection is leader.ts's).
 *
 * The HTTP pool's sessions bound their waits: an application's DDL on developers (an ALTER TABLE,
 * or one queued behind a long transaction) held every lookup on a connection of its 3 for as long
 * as it lasted, and then /ready answered "database unreachable". Set at each connection
 * (`onConnect`, awaited; a connection that cannot take them is dropped): as startup parameters,
 * PgBouncer (session mode) would refuse them.
 *
 * The effects' pool waits for locks as long as it must, but no query of its waits more than
 * EFFECTS_QUERY_MS for its answer (`query_timeout`, the client's own clock): a connection that
 * went dark (a failover that moved the server's address; a network that drops packets) answers
 * nothing for as long as TCP retries, about 15 minutes, and a record of a sent email waiting
 * that long let the claim's lease run out into a second send. Its connection is dropped, and the
 * worker records the send again on a new one (worker.ts). Keepalives find idle ones gone.
 */
import pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";

/** How long an HTTP answer's reads wait for a lock, and run at most. */
export const HTTP_LOCK_WAIT_MS = 1000;
export const HTTP_STATEMENT_MS = 10_000;

/** How long a query of the effects' pool waits for its answer before its connection is dropped. */
export const EFFECTS_QUERY_MS = 60_000;

export function createPools(config: SidecarConfig, log: Logger, { effectsQueryMs = EFFECTS_QUERY_MS } = {}) {
  const pool = new pg.Pool({
    connectionString: config.database.url,
    max: 5,
    application_name: "stakesync_sidecar_read",
    query_timeout: effectsQueryMs,
    keepAlive: true,
  });
  // HTTP reads through a pool of its own that gives up quickly: requests cannot starve the worker
  // and the alert rules of connections, and a database outage answers fast.
  const httpPool = new pg.Pool({
    connectionString: config.database.url,
    max: 3,
    connectionTimeoutMillis: 2000,
    application_name: "stakesync_sidecar_http",
    // The server's statement_timeout, and then some: a connection gone dark answers nothing.
    query_timeout: HTTP_STATEMENT_MS + 2000,
    keepAlive: true,
    onConnect: async (client) => {
      await client.query(`SET lock_timeout = ${HTTP_LOCK_WAIT_MS}; SET statement_timeout = ${HTTP_STATEMENT_MS}`);
    },
  });
  // An idle client whose server went away must not crash the process; the pool replaces it.
  for (const p of [pool, httpPool]) {
    p.on("error", (error) => log.warn({ err: error.message }, "idle database connection lost"));
  }
  return { pool, httpPool };
}

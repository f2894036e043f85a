/**
 * The sidecar's pools of reads and small writes (the leader's own connection is leader.ts's).
 *
 * The HTTP pool's sessions bound their waits: an application's DDL on developers (an ALTER TABLE,
 * or one queued behind a long transaction) held every lookup on a connection of its 3 for as long
 * as it lasted, and then /ready answered "database unreachable". Set at each connection
 * (`onConnect`, awaited; a connection that cannot take them is dropped): as startup parameters,
 * PgBouncer (session mode) would refuse them.
 *
 * The effects' pool gives a statement EFFECTS_QUERY_MS: a record of a sent email waiting longer
 * (for a lock; on a connection gone dark, a failover that moved the server's address or a
 * network that drops packets, for as long as TCP retries, about 15 minutes) let the claim's lease
 * run out into a second send. The server cancels it first (`statement_timeout`, a sixth less: a
 * statement the client gave up on would go on waiting on the server, which does not notice a
 * client gone while it waits for a lock, and each tick would leave one more); the client's own
 * clock (`query_timeout`) is for a connection gone dark, which it then drops. Either way the
 * worker records the send again (worker.ts).
 *
 * And its commits wait for the WAL flush, even on a server whose default is not to: a sync step
 * commits without waiting (step.ts, BEGIN_STEP), and the worker's claim of a welcome job, before
 * it sends, is the commit that flushes the step's with its own. Set for the session whatever the
 * default, so that a reload of the server's configuration does not change it under the worker; any
 * other default waits for the flush at least (`local`; a standby's `remote_apply`), and is kept.
 */
import pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";

/** How long an HTTP answer's reads wait for a lock, and run at most. */
export const HTTP_LOCK_WAIT_MS = 1000;
export const HTTP_STATEMENT_MS = 10_000;

/** How long a query of the effects' pool waits for its answer before its connection is dropped. */
export const EFFECTS_QUERY_MS = 60_000;

/** The pools (the HTTP one connects within 2 s): connecting waits at most this long; keepalives probe a connection idle this long. */
export const CONNECT_MS = 10_000;

/** The bound on a confirmation's statement (see confirmPool): past the loop's own wait for it (4 s). */
export const CONFIRM_QUERY_MS = 5_000;
export const KEEPALIVE_MS = 10_000;

/**
 * Every pool's connections are replaced this often, though busy every second (pg-pool replaces
 * an idle one only): after a failover that left the old primary running, a connection made
 * before it goes on reaching the old server, where this sidecar's leader lock and its outbox
 * fence still hold, and where /ready, /status and an admin's retry would read and write. A new
 * one reaches the server the address names now.
 */
export const RENEW_CONNECTIONS_S = 30;

export function createPools(
  config: SidecarConfig,
  log: Logger,
  { effectsQueryMs = EFFECTS_QUERY_MS, renewS = RENEW_CONNECTIONS_S } = {},
) {
  const pool = new pg.Pool({
    connectionString: config.database.url,
    max: 5,
    maxLifetimeSeconds: renewS,
    connectionTimeoutMillis: CONNECT_MS,
    application_name: "stakesync_sidecar_read",
    query_timeout: effectsQueryMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_MS,
    onConnect: async (client) => {
      await client.query(
        `SET statement_timeout = ${Math.round((effectsQueryMs * 5) / 6)};
         SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit')
                  WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, false)`,
      );
    },
  });
  // HTTP reads through pools of their own that give up quickly: requests cannot starve the worker
  // and the alert rules of connections, and a database outage answers fast. The public pages and
  // look-ups through one; the probes (/ready), the scrape and the admin routes through another:
  // sharing 3 connections, nine anonymous look-ups held on an application's lock queued /ready
  // past its wait for a connection, and it answered "database unreachable".
  const httpPoolOf = (max: number, name: string) =>
    new pg.Pool({
      connectionString: config.database.url,
      max,
      maxLifetimeSeconds: renewS,
      connectionTimeoutMillis: 2000,
      application_name: name,
      // The server's statement_timeout, and then some: a connection gone dark answers nothing.
      query_timeout: HTTP_STATEMENT_MS + 2000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_MS,
      onConnect: async (client) => {
        await client.query(`SET lock_timeout = ${HTTP_LOCK_WAIT_MS}; SET statement_timeout = ${HTTP_STATEMENT_MS}`);
      },
    });
  const httpPool = httpPoolOf(3, "stakesync_sidecar_http");
  const probePool = httpPoolOf(2, "stakesync_sidecar_probe");
  // The leader's questions whether the server still has its lock (loop.ts confirmLeadership), on
  // a connection of their own, one at a time: on the effects' pool, one that waited for a free
  // connection behind the status page's reads during a long round went unanswered for 4 s, and a
  // healthy leader stood down.
  // Its statements bounded too: the loop stops waiting for an answer after
  // LEADER_SILENCE_LIMIT_S, and without a bound of its own the one connection gone dark was kept,
  // every later question queued behind it until TCP gave up (15 minutes without a confirmation,
  // and with them the check for a failover that left the old primary running). Run out, pg-pool
  // drops the connection and the next question opens another.
  const confirmPool = new pg.Pool({
    connectionString: config.database.url,
    max: 1,
    maxLifetimeSeconds: renewS,
    connectionTimeoutMillis: CONNECT_MS,
    query_timeout: CONFIRM_QUERY_MS,
    application_name: "stakesync_sidecar_confirm",
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_MS,
  });
  // An idle client whose server went away must not crash the process; the pool replaces it.
  for (const p of [pool, httpPool, probePool, confirmPool]) {
    p.on("error", (error) => log.warn({ err: error.message }, "idle database connection lost"));
  }
  return { pool, httpPool, probePool, confirmPool };
}

/**
 * One writer at a time: a PostgreSQL session advisory lock held by the very connection the
 * leader writes through. If that connection dies, PostgreSQL releases the lock and the leader
 * can no longer write; a standby polling every second takes over.
 */
import pg from "pg";
import type { Logger } from "pino";
import { exitOnConfigError } from "../lib/config";
import { LOCKS } from "./db/locks";
import { CONNECT_MS } from "./db/pools";
import type { Queryable } from "./db/queryable";

/** The advisory lock key; SQL checks who holds it through pg_locks (leaderLockHeldBy). */
export const LEADER_LOCK = LOCKS.leader;

/**
 * True in SQL while the server has the leader lock held by the backend `pid` (an SQL expression):
 * how the outbox fences its sends, how a leader confirms its lock over another connection, and how
 * it tells that the lock stays with its session.
 */
export const leaderLockHeldBy = (pid: string) =>
  `EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = ${LEADER_LOCK}
                   AND objsubid = 1 AND granted AND pid = ${pid})`;

/**
 * Which server a connection reached, for as long as it runs: its start, to the microsecond, as
 * seconds since 1970 (not a timestamp's text, which follows the session's TimeZone and DateStyle).
 */
export const SERVER_START = "extract(epoch from pg_postmaster_start_time())::text";

/**
 * leaderLockHeldBy, on the leader's own server when `server` (an SQL expression, text: its start,
 * as LeaderConnection.server) is not null. After a failover that left the old primary running, an
 * old leader's pools reach the new primary, where another sidecar's leader connection may have the
 * same pid (pids repeat, containers restart): by pid alone, its fenced writes went through there.
 */
export const leaderLockHeldOn = (pid: string, server: string) =>
  `(${leaderLockHeldBy(pid)} AND (${server}::text IS NULL OR ${SERVER_START} = ${server}::text))`;

const RETRY_MS = 1000;

/**
 * How long PostgreSQL keeps a silent leader's session, and so its lock. A frozen process
 * (SIGSTOP, a stalled VM) keeps its TCP connection open: only server-side timeouts end it. The
 * leader is never idle that long (it polls every SYNC_POLL_MS and pings while it backs off), and
 * a standby trying every second takes over within about this much more than RETRY_MS. Short,
 * because a frozen leader stalls every developer's sync for that long (the soak's sidecar_freeze:
 * 8 s cost about 4 s of staleness per freeze past its 5-s allowance); not shorter, because a
 * busy host may delay a ping by a second or two, and each lost session is a failover.
 */
export const LEADER_SILENCE_LIMIT_S = 4;

/**
 * `pid` is the leader connection's backend: the one pg_locks names as the lock holder; `server`,
 * when that server started (pg_postmaster_start_time): with the pid, which server's lock it is.
 */
export type LeaderConnection = {
  client: pg.Client;
  lost: Promise<Error>;
  pid: number;
  server: string;
  /**
   * Whether the server applies tcp_user_timeout to this session (leaderSession sets it): not on
   * a Unix socket (it reads 0 there), nor where the platform lacks it. Without it, a leader frozen
   * while the server is sending it a large answer keeps its lock until it thaws: the session is
   * busy (no idle limit), and the server's blocked write heeds no statement_timeout.
   */
  userTimeout: boolean;
};

export async function connectWriter(databaseUrl: string): Promise<LeaderConnection> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: "stakesync_sidecar",
    // A database that never answers (a partition, a dead address) is a failed try, not a wait of
    // two minutes or more per try that kept it from counting, and paging (loop.ts unreachable).
    connectionTimeoutMillis: CONNECT_MS,
    // A dead peer is noticed in seconds, not after the kernel's two hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 3000,
  });
  // Every error, not the first alone: a server that ends the session while it is idle (a restart,
  // pg_terminate_backend, idle_session_timeout) makes pg emit two, its FATAL message and then
  // "Connection terminated unexpectedly" as the socket closes. The second, unheard, crashed the
  // process unless the loop had ended the client in between.
  const lost = new Promise<Error>((resolve) => {
    client.on("error", resolve);
    client.once("end", () => resolve(new Error("database connection closed")));
  });
  try {
    return { client, lost, ...(await prepareSession(client)) };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** Connects `client` and sets up its session for leading; its backend's pid, and its server's start. */
async function prepareSession(client: pg.Client): Promise<{ pid: number; server: string; userTimeout: boolean }> {
  await client.connect();
  await client.query({ text: leaderSession(LEADER_SILENCE_LIMIT_S), ...TRY_BOUND });
  const { rows } = await client.query<{ pid: number; server: string; user_timeout: boolean }>({
    text: `SELECT pg_backend_pid() AS pid, ${SERVER_START} AS server,
                  current_setting('tcp_user_timeout') <> '0' AS user_timeout`,
    ...TRY_BOUND,
  });
  return { pid: rows[0]?.pid ?? 0, server: rows[0]?.server ?? "", userTimeout: rows[0]?.user_timeout === true };
}

/**
 * A try to lead's statements, each bounded as its connection is: a network that drops the
 * packets after the connection was made (its answer never comes) fails the try, which is then
 * counted and made again, rather than waiting for TCP to give up, about 15 minutes in which this
 * sidecar neither led nor counted (pg destroys the socket of a statement that ran out).
 */
const TRY_BOUND = { query_timeout: CONNECT_MS };

/**
 * The leader's session: if this process freezes, in a transaction or between two, the server
 * ends the session after `limitS` and frees the lock; if its host vanishes, the server's
 * keepalives notice within seconds. While a statement runs (the session is busy, and neither limit
 * applies), the server checks every second that the client is still connected
 * (client_connection_check_interval, PostgreSQL 14): a leader killed in the middle of a long
 * statement lets another lead within a second of the server seeing its socket closed, not once
 * the statement ends; left at 0 where the server's platform cannot tell (PostgreSQL 14 off Linux),
 * which refuses the setting. And DISCARD TEMP: a session-mode pool that does not reset its
 * server connections (PgBouncer with an empty server_reset_query) hands over the previous
 * client's temp tables, perhaps those of a sidecar of another version whose step tables
 * (step-tables.ts) have other columns, and every step would fail on them.
 */
export const leaderSession = (limitS: number) =>
  `DISCARD TEMP;
   SET idle_in_transaction_session_timeout = '${limitS}s';
   SET idle_session_timeout = '${limitS}s';
   SET tcp_keepalives_idle = 3; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3;
   SET tcp_user_timeout = ${limitS * 1000};
   DO $$ BEGIN SET client_connection_check_interval = 1000;
   EXCEPTION WHEN invalid_parameter_value THEN NULL; END $$`;

/**
 * Whether the server still has the leader lock held by the backend `pid`: asked over another
 * connection, it tells a leader connection gone dark (the network drops its packets, or a NAT
 * forgot it) from one merely slow. The server ends a silent leader's session within
 * LEADER_SILENCE_LIMIT_S; the process would hear of it only when TCP gives up, about 15 minutes.
 */
export async function holdsLeaderLock(db: Queryable, pid: number, server?: string): Promise<boolean> {
  // On the leader's server: after a failover that left the old primary running, the leader's
  // connection goes on there, and a connection made since reaches the new one, where another
  // sidecar leads (whose pid may be this one's).
  const { rows } = await db.query<{ held: boolean }>(`SELECT ${leaderLockHeldOn("$1::int", "$2")} AS held`, [
    pid,
    server ?? null,
  ]);
  return rows[0]?.held === true;
}

/**
 * Resolves with a connection that holds the leader lock; tries again every second until then.
 * `tried` hears how each try went: the database reached (led or held by another), or the error
 * that kept it from being reached.
 */
export async function acquireLeadership(
  databaseUrl: string,
  log: Logger,
  stopped: () => boolean,
  tried: (error?: unknown) => void = () => undefined,
) {
  let announced = false;
  while (!stopped()) {
    let connection: LeaderConnection | undefined;
    try {
      connection = await connectWriter(databaseUrl);
      const taken = await tryLeaderLock(connection.client);
      tried();
      if (taken === "handed over") exitOnConfigError(HANDED_OVER);
      if (taken === "taken") {
        await refuseTransactionPooling(connection.client);
        return connection;
      }
      if (!announced) log.info("another sidecar is leader; standing by");
      announced = true;
    } catch (error) {
      log.warn({ err: (error as Error).message }, "cannot reach the database to take leadership");
      tried(error);
    }
    await connection?.client.end().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
  return undefined;
}

/**
 * Takes the leader lock on a session just opened: "taken", "held" by another session, or "handed
 * over": the session held it already. A session of our own never does; one a pooler shares
 * (PgBouncer in transaction mode, which gives an idle pool's one server connection to every
 * client) or hands over without a reset (session mode with an empty server_reset_query) may, and
 * pg_try_advisory_lock, re-entrant within a session, would answer true to a second sidecar
 * while the first leads on that same server session: two leaders, each passing every check
 * that asks the server which session holds the lock.
 */
export async function tryLeaderLock(client: pg.ClientBase): Promise<"taken" | "held" | "handed over"> {
  const { rows } = await client.query<{ ok: boolean | null }>({
    text: `SELECT CASE WHEN ${leaderLockHeldBy("pg_backend_pid()")} THEN NULL ELSE pg_try_advisory_lock($1) END AS ok`,
    values: [LEADER_LOCK],
    ...TRY_BOUND,
  });
  const ok = rows[0]?.ok;
  return ok === null || ok === undefined ? "handed over" : ok ? "taken" : "held";
}

const HANDED_OVER =
  "DATABASE_URL: a new session already held the leader lock, so a pool shares its server sessions or hands them over without a reset (PgBouncer in transaction mode, or session mode with an empty server_reset_query): point the sidecar at PostgreSQL directly or at a session-mode pool that resets";
const NOT_KEPT =
  "DATABASE_URL: the leader lock does not stay with this session (PgBouncer in transaction mode?): point the sidecar at PostgreSQL directly or at a session-mode pool";

/**
 * Behind PgBouncer in transaction mode each statement may run on another server connection: the
 * session's advisory lock, LISTEN and the session timeouts would belong to a connection this
 * sidecar no longer talks to, and two sidecars could both write. The lock just taken must be
 * ours statement after statement; if not, this is no place to run, and no retry will change it.
 */
async function refuseTransactionPooling(client: pg.Client) {
  for (let i = 0; i < 3; i++) {
    const { rows } = await client.query<{ ours: boolean }>({
      text: `SELECT ${leaderLockHeldBy("pg_backend_pid()")} AS ours`,
      ...TRY_BOUND,
    });
    if (!rows[0]?.ours) exitOnConfigError(NOT_KEPT);
  }
}

/**
 * One writer at a time: a PostgreSQL session advisory lock held by the very connection the
 * leader writes through. If that connection dies, PostgreSQL releases the lock and the leader
 * can no longer write; a standby polling every second takes over.
 */
import pg from "pg";
import type { Logger } from "pino";

const LEADER_LOCK = 7_263_002;
const RETRY_MS = 1000;

export type LeaderConnection = { client: pg.Client; lost: Promise<Error> };

export async function connectWriter(databaseUrl: string): Promise<LeaderConnection> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: "stakesync_sidecar",
    // A dead peer is noticed in seconds, not after the kernel's two hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 3000,
  });
  const lost = new Promise<Error>((resolve) => {
    client.once("error", resolve);
    client.once("end", () => resolve(new Error("database connection closed")));
  });
  await client.connect();
  // If this process freezes mid-transaction, the server ends the session and frees the lock.
  await client.query("SET idle_in_transaction_session_timeout = '30s'");
  return { client, lost };
}

/** Resolves with a connection that holds the leader lock; tries again every second until then. */
export async function acquireLeadership(databaseUrl: string, log: Logger, stopped: () => boolean) {
  let announced = false;
  while (!stopped()) {
    let connection: LeaderConnection | undefined;
    try {
      connection = await connectWriter(databaseUrl);
      const { rows } = await connection.client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [
        LEADER_LOCK,
      ]);
      if (rows[0]?.ok) return connection;
      if (!announced) log.info("another sidecar is leader; standing by");
      announced = true;
    } catch (error) {
      log.warn({ err: (error as Error).message }, "cannot reach the database to take leadership");
    }
    await connection?.client.end().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
  return undefined;
}

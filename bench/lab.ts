/**
 * The bench's machine room: one embedded PostgreSQL (durable, fsync on, as in production: per-event
 * writes pay for it, as they would there), the processes each scenario starts, each log kept in
 * bench/.cache/logs/<name>.log to see where time went, and a shutdown that stops them all, also
 * when the bench crashes or is interrupted.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "../lib/config";
import { type Anvil, type AnvilOptions, startAnvil } from "../lib/local/anvil";
import { type LocalPostgres, startPostgres } from "../lib/local/postgres";
import { type RunningProcess, sidecarCommand } from "../lib/local/process";
import {
  chainEnv,
  type LocalProcess,
  type Spawn,
  spawnNode,
  startPonder as startLocalPonder,
  startSidecar as startLocalSidecar,
} from "../lib/local/stack";
import { freePort } from "../lib/ports";
import type { Workload } from "./workload";

/** Private-node RPC settings (README "Performance"): more lanes into Ponder's balancer. */
export const PRIVATE_NODE = { RPC_LANES: "8" };

export type Lab = {
  postgres: LocalPostgres;
  /** Each backfill run records where PostgreSQL's time went (bench/statements.ts). */
  statements: boolean;
  log: (line: string) => void;
  freshDatabase: () => Promise<string>;
  startPonder: (env: Record<string, string>, schema: string) => Promise<LocalProcess>;
  startSidecar: (env: Record<string, string>, name: string) => Promise<LocalProcess>;
  /** `node <args>`, kept and stopped like Ponder and the sidecar. */
  spawn: Spawn;
  /** An anvil stopped at shutdown unless the scenario stops it first (`stopAnvil`). */
  startAnvil: (options: Omit<AnvilOptions, "port">) => Promise<Anvil>;
  keepAnvil: (anvil: Anvil) => void;
  stopAnvil: (anvil: Anvil) => Promise<void>;
  shutdown: () => Promise<void>;
};

/** The chain variables for the workload's chain (31337). */
export const workloadEnv = (anvil: Anvil, workload: Pick<Workload, "deployment">, extra: Record<string, string> = {}) =>
  chainEnv([{ chainId: 31337, rpcUrl: anvil.rpcUrl, deployment: workload.deployment }], extra);

export async function openLab(log: (line: string) => void, options: { statements?: boolean } = {}): Promise<Lab> {
  const dir = mkdtempSync(path.join(tmpdir(), "stakesync-bench-"));
  const statements = options.statements === true;
  const postgres = await startPostgres({
    dataDir: path.join(dir, "pg"),
    port: await freePort(),
    database: "bench",
    statements,
  });
  // Built once, before any clock starts.
  await sidecarCommand();
  const logDir = path.join(repoRoot, "bench", ".cache", "logs");
  mkdirSync(logDir, { recursive: true });
  const running = new Set<RunningProcess>();
  const anvils = new Set<Anvil>();

  const spawn: Spawn = (name, args, env) => {
    const spawnedAt = Date.now();
    const spawned = spawnNode(name, args, env);
    // A process that ends before the scenario stops it (Ponder refusing the Node version or its
    // config, a crash) ends the bench with its log: the scenarios' waits for /ready or a synced
    // row would otherwise wait out their timeouts, up to an hour.
    let stopping = false;
    const proc = {
      ...spawned,
      stop: () => {
        stopping = true;
        return spawned.stop();
      },
      kill: () => {
        stopping = true;
        return spawned.kill();
      },
    };
    running.add(proc);
    proc.exited.then((code) => {
      running.delete(proc);
      // The spawn time first (ms since the epoch, as in pino's "time"): startup shows in the log too.
      writeFileSync(path.join(logDir, `${name}.log`), `{"spawned_at":${spawnedAt}}\n${proc.output()}`);
      if (stopping || shuttingDown) return;
      log(`${name} exited (code ${code}) before the bench stopped it; its log ends:\n${proc.output().slice(-2000)}`);
      shutdown().finally(() => process.exit(1));
    });
    return proc;
  };
  let shuttingDown = false;
  const shutdown = async () => {
    shuttingDown = true;
    await Promise.all([...running].map((p) => p.kill()));
    await Promise.all([...anvils].map((a) => a.stop()));
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("SIGINT", () => shutdown().then(() => process.exit(130)));
  // Children outlive a crashed parent: stop them on any crash too.
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.on(event, (error) => {
      log(`crashed: ${(error as Error)?.stack ?? error}`);
      shutdown().finally(() => process.exit(1));
    });
  }
  let databases = 0;
  return {
    postgres,
    statements,
    log,
    freshDatabase: () => postgres.createDatabase(`bench_${databases++}`),
    startPonder: async (env, schema) => startLocalPonder(env, { schema, port: await freePort(), spawn }),
    startSidecar: async (env, name) => startLocalSidecar(env, { port: await freePort(), name, spawn }),
    spawn,
    startAnvil: async (options) => {
      const anvil = await startAnvil({ port: await freePort(), ...options });
      anvils.add(anvil);
      return anvil;
    },
    keepAnvil: (anvil) => {
      anvils.add(anvil);
    },
    stopAnvil: async (anvil) => {
      await anvil.stop();
      anvils.delete(anvil);
    },
    shutdown,
  };
}

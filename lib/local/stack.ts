/**
 * The parts of a local stack as child processes, one way for `npm run dev`, the tests, the bench
 * and the soak: the environment a child gets, the chain variables an operator would set, `ponder
 * start` and the sidecar, and the checks that say each is up. Who calls it chooses how a process
 * is spawned (`Spawn`): the tests stop theirs when a file ends, the bench keeps each log.
 */
import { loadPonderMemory, withoutLocalDefaults } from "../config";
import { ponderStartCommand, type RunningProcess, sidecarCommand, spawnProcess } from "./process";

/** The environment a child gets: the machine's PATH and HOME, telemetry off, nothing from .env.local. */
export function childEnv(env: Record<string, string>): Record<string, string> {
  return withoutLocalDefaults({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    PONDER_TELEMETRY_DISABLED: "true",
    ...env,
  });
}

export type LocalChain = { chainId: number; rpcUrl: string; deployment: { stakeVault: string; blockNumber: number } };

/** A chain's variables as an operator sets them: plain names for one chain, CHAINS and suffixes for several. */
export function chainEnv(chains: LocalChain[], extra: Record<string, string> = {}): Record<string, string> {
  if (chains.length === 1) {
    const [c] = chains as [LocalChain];
    return {
      CHAIN_ID: String(c.chainId),
      RPC_URL: c.rpcUrl,
      STAKE_VAULT_ADDRESS: c.deployment.stakeVault,
      START_BLOCK: String(c.deployment.blockNumber),
      ...extra,
    };
  }
  const env: Record<string, string> = { CHAINS: chains.map((c) => c.chainId).join(","), ...extra };
  for (const c of chains) {
    env[`RPC_URL_${c.chainId}`] = c.rpcUrl;
    env[`STAKE_VAULT_ADDRESS_${c.chainId}`] = c.deployment.stakeVault;
    env[`START_BLOCK_${c.chainId}`] = String(c.deployment.blockNumber);
  }
  return env;
}

/** Starts `node <args>` as the caller wants it kept: `name` says which part it is. */
export type Spawn = (name: string, args: string[], env: Record<string, string>) => RunningProcess;
export const spawnNode: Spawn = (_name, args, env) => spawnProcess(process.execPath, args, childEnv(env));

/** Ponder is ready: backfilled and indexing live (`/ready` is 200). The one readiness check. */
export async function ponderReady(url: string): Promise<boolean> {
  return (await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.status === 200;
}

/** The sidecar answers `/status`: its database is prepared (migrations, developers table). */
export async function sidecarAnswering(url: string): Promise<boolean> {
  return (await fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.status === 200;
}

export type LocalProcess = RunningProcess & { url: string };

/** `ponder start --schema <schema>` on `port` with JSON logs, as `npm start` runs it, plus `extraArgs`. */
export function startPonder(
  env: Record<string, string>,
  {
    schema,
    port,
    spawn = spawnNode,
    extraArgs = [],
  }: { schema: string; port: number; spawn?: Spawn; extraArgs?: string[] },
): LocalProcess & { schema: string } {
  const ponder = ponderStartCommand(loadPonderMemory(env), schema, port, extraArgs);
  const proc = spawn(`ponder-${schema}`, ponder.args, { ...ponder.env, ...env, DATABASE_SCHEMA: schema });
  return { ...proc, url: `http://127.0.0.1:${port}`, schema };
}

/** The sidecar on `port` (see sidecarCommand for how it runs). */
export async function startSidecar(
  env: Record<string, string>,
  { port, name = "sidecar", spawn = spawnNode }: { port: number; name?: string; spawn?: Spawn },
): Promise<LocalProcess> {
  const proc = spawn(name, await sidecarCommand(), { ...env, SIDECAR_PORT: String(port) });
  return { ...proc, url: `http://127.0.0.1:${port}` };
}

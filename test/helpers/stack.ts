/**
 * Real parts for tests: an anvil with a deployed vault, a fresh database in the run's
 * PostgreSQL, and `ponder start` as a real child process that can be SIGKILLed.
 */
import path from "node:path";
import { inject } from "vitest";
import { repoRoot } from "../../lib/config";
import { type Clients, connect, type Deployment, deploy, vault } from "../../lib/contracts";
import { type Anvil, startAnvil, stopChild } from "../../lib/local/anvil";
import { type RunningProcess, spawnProcess, throwIfExited } from "../../lib/local/process";
import {
  childEnv,
  type LocalChain,
  type LocalProcess,
  chainEnv as localChainEnv,
  ponderReady,
  type Spawn,
  sidecarAnswering,
  startPonder as startLocalPonder,
  startSidecar as startLocalSidecar,
} from "../../lib/local/stack";
import { freePort } from "../../lib/ports";
import { queryOnce as sql } from "../../lib/query-once";
import { waitFor } from "../../lib/wait";

const cleanups: (() => Promise<void>)[] = [];

/**
 * Stops everything the helpers started, newest first; call it in afterAll. What the list holds
 * when it is called: a vitest worker runs its files one after another in one module graph
 * (vitest.config.ts), and a cleanup that outlived its hook must not stop the next file's processes.
 */
export async function cleanup() {
  ponderBySchema.clear();
  for (const stop of cleanups.splice(0).reverse()) await stop().catch(() => undefined);
}

export type TestChain = Anvil & Clients & { deployment: Deployment; vault: ReturnType<typeof vault> };

export async function startChain(options: { chainId?: number; blockTime?: number } = {}): Promise<TestChain> {
  const anvil = await startAnvil({ port: await freePort(), ...options });
  cleanups.push(anvil.stop);
  const clients = await connect(anvil.rpcUrl);
  const deployment = await deploy(clients);
  return { ...anvil, ...clients, deployment, vault: vault(clients, deployment) };
}

/** A new, empty database in the run's PostgreSQL. */
export async function freshDatabase(): Promise<string> {
  const port = inject("postgresPort");
  const name = `t_${Math.random().toString(36).slice(2, 10)}`;
  await sql(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres`, `CREATE DATABASE ${name}`);
  return `postgresql://postgres:postgres@127.0.0.1:${port}/${name}`;
}

export { queryOnce as sql } from "../../lib/query-once";
export type { RunningProcess };
export { childEnv };

/**
 * A chain's variables as an operator sets them (lib/local/stack.ts), for a private node such as
 * anvil. RPC_LANES=8, the operations guide's setting for one: on one lane Ponder's balancer
 * allows 20 requests/s at first, and fetching the 30 unfinalized blocks took 3.8 s of each 6 s
 * Ponder start (2.6 s in all with 8 lanes), some fifty times a run. POLLING_INTERVAL_MS=100 (the
 * default is 1 s): a block mined on demand reaches Ponder within 0.1 s. A test about a default
 * sets it in `extra`.
 */
export function chainEnv(chains: LocalChain[], extra: Record<string, string> = {}): Record<string, string> {
  return localChainEnv(chains, { RPC_LANES: "8", POLLING_INTERVAL_MS: "100", ...extra });
}

/**
 * Node's on-disk compile cache for the processes the tests start, Ponder's above all: about forty
 * `ponder start`s a run compile the same modules of Ponder's dependencies. With the cache a start
 * took 1.94 CPU-seconds to /ready instead of 2.08 (medians of 7, 2026-12-05). Node checks each
 * entry against the module's source and skips a cache it cannot use; npm start does not set it.
 */
const compileCache = path.join(repoRoot, "node_modules", ".cache", "node-compile-cache");

/** Spawns with the test environment and stops the process when the file's tests end. */
export function run(command: string, args: string[], env: Record<string, string>): RunningProcess {
  const proc = spawnProcess(command, args, childEnv({ NODE_COMPILE_CACHE: compileCache, ...env }));
  // SIGTERM first: a wrapper such as scripts/start.ts passes it on to its own children.
  cleanups.push(() => stopChild(proc.process, "SIGTERM"));
  return proc;
}

/** The latest Ponder started on each schema, for its log when a wait on it times out. */
const ponderBySchema = new Map<string, RunningProcess>();

export type PonderProcess = LocalProcess & { schema: string; waitReady: () => Promise<void> };

/** Spawns a part of the stack as `run` does: stopped when the file's tests end. */
export const spawnForTest: Spawn = (_name, args, env) => run(process.execPath, args, env);

/** `ponder start` on its own schema and port, JSON logs; the node process itself, so SIGKILL is real. */
export async function startPonder(env: Record<string, string>, port?: number): Promise<PonderProcess> {
  const schema = env.DATABASE_SCHEMA ?? `p_${Math.random().toString(36).slice(2, 10)}`;
  const proc = startLocalPonder(env, { schema, port: port ?? (await freePort()), spawn: spawnForTest });
  ponderBySchema.set(schema, proc);
  return {
    ...proc,
    waitReady: () =>
      waitFor(
        "ponder /ready",
        async () => {
          await throwIfExited(proc, "ponder");
          return ponderReady(proc.url);
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      ),
  };
}

/**
 * The usual start of a sidecar test: a chain whose vault's owner is funded, a fresh database and
 * `ponder start` on `schema`, ready. `env` is Ponder's environment, the base of the sidecar's.
 */
export async function startIndexedChain(schema: string) {
  const chain = await startChain();
  await chain.vault.fund(10n ** 12n);
  const databaseUrl = await freshDatabase();
  const env = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema };
  const ponder = await startPonder(env);
  await ponder.waitReady();
  return { chain, databaseUrl, env, ponder };
}

/**
 * Lets a new `ponder start` take `schema` at once after the last one exited. A SIGTERM releases
 * the lock (since vite.config.ts keeps Vite's own SIGTERM handler from exiting first; see
 * test/ponder-internals/sigterm-unlock); after a SIGKILL nothing unlocks, and a restart waits up
 * to 25 s for the dead process's heartbeat to expire (the soak keeps that wait). Crash recovery
 * does not depend on the lock: tests that restart Ponder do the unlock Ponder would have done.
 * Only once the process has exited: a live instance's lock is not ours to take.
 */
export async function releaseSchemaLock(databaseUrl: string, schema: string) {
  await sql(
    databaseUrl,
    `UPDATE "${schema}"._ponder_meta SET value = jsonb_set(value, '{is_locked}', to_jsonb(0)) WHERE key = 'app'`,
  );
}

/** The block Ponder has indexed on each chain (`_ponder_checkpoint`, block at chars 27–42). */
export async function indexedBlocks(databaseUrl: string, schema: string): Promise<Map<number, number>> {
  const rows = await sql<{ chain_id: string; block: string }>(
    databaseUrl,
    `SELECT chain_id, substring(latest_checkpoint from 27 for 16)::bigint AS block FROM "${schema}"._ponder_checkpoint`,
  ).catch(() => []);
  return new Map(rows.map((r) => [Number(r.chain_id), Number(r.block)]));
}

/** Waits until Ponder has indexed `chain` up to its current head; on a timeout, shows that Ponder's log. */
export async function waitIndexedToHead(databaseUrl: string, schema: string, chain: TestChain) {
  const head = Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  await waitFor(
    `${schema} indexed to block ${head} on chain ${chain.chainId}`,
    async () => ((await indexedBlocks(databaseUrl, schema)).get(chain.chainId) ?? -1) >= head,
    { timeoutMs: 60_000 },
  ).catch((error: Error) => {
    const log = ponderBySchema.get(schema)?.output().slice(-4000);
    throw new Error(log ? `${error.message}\nPonder's log ends:\n${log}` : error.message);
  });
}

/** developer_stake as { developer → amount } for one chain. */
export async function ponderStakes(databaseUrl: string, schema: string, chainId: number): Promise<Map<string, bigint>> {
  const rows = await sql<{ developer: string; amount: string }>(
    databaseUrl,
    `SELECT developer, amount::text FROM "${schema}".developer_stake WHERE chain_id = $1`,
    [chainId],
  );
  return new Map(rows.map((r) => [r.developer, BigInt(r.amount)]));
}

/** stakeOf() on chain for each developer, as { developer → amount }. */
export async function chainStakes(chain: TestChain, developers: Iterable<string>): Promise<Map<string, bigint>> {
  const result = new Map<string, bigint>();
  for (const developer of developers) result.set(developer, await chain.vault.stakeOf(developer as `0x${string}`));
  return result;
}

export type SidecarProcess = RunningProcess & {
  url: string;
  status: () => Promise<SidecarStatus>;
  waitSynced: (chain: TestChain, databaseUrl: string, ponderSchema: string) => Promise<void>;
};
export type SidecarStatus = {
  role: "leader" | "standby";
  ready: boolean;
  chains: { chainId: number; head: number | null; indexed: number | null; synced: number }[];
  outbox: { pending: number; dead: number };
  developers: { queued: number; refused: number };
};

/** The sidecar as a real process (`node dist/sidecar.mjs`, see sidecarCommand), waiting for /status. */
export async function startSidecar(env: Record<string, string>): Promise<SidecarProcess> {
  const proc = await startLocalSidecar(
    { SYNC_POLL_MS: "100", RETRY_DELAY_MS: "200", ...env },
    { port: await freePort(), spawn: spawnForTest },
  );
  const url = proc.url;
  await waitFor("sidecar /status", async () => {
    await throwIfExited(proc, "sidecar");
    return sidecarAnswering(url);
  });
  const status = async () => (await (await fetch(`${url}/status`)).json()) as SidecarStatus;
  return {
    ...proc,
    url,
    status,
    /** Until the sidecar has applied everything confirmable at the chain's current head. */
    waitSynced: async (chain, databaseUrl, ponderSchema) => {
      await waitIndexedToHead(databaseUrl, ponderSchema, chain);
      const head = Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
      const confirmations = Number(env[`CONFIRMATIONS_${chain.chainId}`] ?? env.CONFIRMATIONS ?? 2);
      const target = Math.max(head - confirmations, chain.deployment.blockNumber - 1);
      // Synced: the cursor is there, and what it brought is written to developers.
      await waitFor(`sidecar synced to ${target} on chain ${chain.chainId}`, async () => {
        const s = await status();
        return (s.chains.find((c) => c.chainId === chain.chainId)?.synced ?? -1) >= target && s.developers.queued === 0;
      });
    },
  };
}

export type DeveloperRow = { wallet_address: string; status: string; stake_amount: string; staked_at: Date | null };

export async function developer(databaseUrl: string, wallet: string, table = "developers") {
  const rows = await sql<DeveloperRow>(
    databaseUrl,
    `SELECT wallet_address, status, stake_amount::text, staked_at FROM ${table} WHERE lower(wallet_address) = lower($1)`,
    [wallet],
  );
  return rows[0];
}

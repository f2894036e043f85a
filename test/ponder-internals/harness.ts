/**
 * Shared setup for the tests that pin Ponder internals stakesync relies on (one assumption per
 * file): a real anvil with a small workload, a fresh database, `ponder start` (polling every
 * 100 ms), and helpers to observe Ponder's transactions from the database side (triggers that
 * log into schema `obs`) and its NOTIFYs (a pg Client that LISTENs).
 */
import type { Address } from "viem";
import { throwIfExited } from "../../lib/local/process";
import { ponderReady, startPonder } from "../../lib/local/stack";
import { freePort } from "../../lib/ports";
import { WaitAborted, waitFor } from "../../lib/wait";
import {
  chainEnv,
  freshDatabase,
  type RunningProcess,
  spawnForTest,
  sql,
  startChain,
  type TestChain,
} from "../helpers/stack";
import { mine, wallets } from "../helpers/workload";

export { cleanup, releaseSchemaLock, sql } from "../helpers/stack";
export { mine } from "../helpers/workload";

export type InternalsPonder = RunningProcess & { url: string; startedAt: number };

export type Stack = {
  chain: TestChain;
  databaseUrl: string;
  schema: string;
  /** The environment `ponder start` got; start it again with the same one for the same build. */
  env: Record<string, string>;
  ponder: InternalsPonder;
  developers: Address[];
};

/**
 * `ponder start` as test/helpers/stack.ts's startPonder runs it, plus `extraArgs` (for example
 * `--views-schema`), waiting for /ready.
 */
export async function startPonderWith(env: Record<string, string>, extraArgs: string[] = []): Promise<InternalsPonder> {
  const proc = await spawnPonder(env, extraArgs);
  await waitReady(proc);
  return proc;
}

/** `ponder start` as startPonderWith runs it, not waited for. */
export async function spawnPonder(env: Record<string, string>, extraArgs: string[] = []): Promise<InternalsPonder> {
  const startedAt = Date.now();
  const proc = startPonder(env, {
    schema: env.DATABASE_SCHEMA as string,
    port: await freePort(),
    extraArgs,
    spawn: spawnForTest,
  });
  return { ...proc, startedAt };
}

/** Until Ponder's /ready answers 200; its log's end in the error if it never does. */
export async function waitReady(proc: InternalsPonder) {
  await waitFor(
    "ponder /ready",
    async () => {
      await throwIfExited(proc, "ponder");
      return ponderReady(proc.url);
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  ).catch((error: Error) => {
    if (error instanceof WaitAborted) throw error; // it carries the log already
    throw new Error(`${error.message}\nPonder's log ends:\n${proc.output().slice(-3000)}`);
  });
}

/**
 * A chain with a small backfilled workload (staked, unstaked and slashed events, finalized: 35
 * blocks behind the head), a fresh database, and `ponder start` ready and indexed to the head.
 */
export async function startStack(
  options: {
    schema?: string;
    ponderArgs?: string[];
    /** Run on the fresh database before Ponder starts (an observer's triggers). */
    beforePonder?: (databaseUrl: string, schema: string) => Promise<void>;
  } = {},
): Promise<Stack> {
  const chain = await startChain();
  const databaseUrl = await freshDatabase();
  const developers = wallets(3, "internals");
  await chain.vault.fund(10n ** 12n);
  await chain.vault.stakeForMany(developers, [1_000n, 2_000n, 3_000n]);
  await chain.vault.slash(developers[0] as Address, 100n);
  await chain.vault.stake(5_000n);
  await chain.vault.unstake(1_000n);
  // Behind Ponder's 30-block finality for chain 31337: these come through the backfill.
  await mine(chain, 35);
  const schema = options.schema ?? `pi_${Math.random().toString(36).slice(2, 10)}`;
  const env = {
    ...chainEnv([chain]),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: schema,
  };
  await options.beforePonder?.(databaseUrl, schema);
  const ponder = await startPonderWith(env, options.ponderArgs);
  await waitIndexed(databaseUrl, schema, chain, ponder);
  return { chain, databaseUrl, schema, env, ponder, developers };
}

export async function head(chain: TestChain): Promise<number> {
  return Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
}

/**
 * The block Ponder's own `GET /status` reports for `chainId` (it decodes the checkpoint itself), or
 * undefined while it does not answer. The wait below goes by it, not by the checkpoint's layout
 * that checkpoint-layout pins: a Ponder that changed the layout fails that test under its name
 * instead of timing every test out, or ending each wait before Ponder got there.
 */
export async function statusBlock(ponder: { url: string }, chainId: number): Promise<number | undefined> {
  const status = await fetch(`${ponder.url}/status`, { signal: AbortSignal.timeout(5_000) })
    .then((r) => (r.ok ? (r.json() as Promise<Record<string, { id: number; block?: { number: number } }>>) : undefined))
    .catch(() => undefined);
  return Object.values(status ?? {}).find((c) => c.id === chainId)?.block?.number;
}

/** Until Ponder reports (GET /status) the chain's current head indexed. */
export async function waitIndexed(
  _databaseUrl: string,
  schema: string,
  chain: TestChain,
  ponder: RunningProcess & { url: string },
) {
  const target = await head(chain);
  await waitFor(
    `${schema} indexed to block ${target} (Ponder's /status)`,
    async () => {
      await throwIfExited(ponder, "ponder");
      return ((await statusBlock(ponder, chain.chainId)) ?? -1) >= target;
    },
    { timeoutMs: 90_000 },
  ).catch((error: Error) => {
    if (error instanceof WaitAborted) throw error;
    throw new Error(`${error.message}\nPonder's log ends:\n${ponder.output().slice(-3000)}`);
  });
}

export type Checkpoints = {
  chain_name: string;
  chain_id: string;
  latest_checkpoint: string;
  safe_checkpoint: string;
  finalized_checkpoint: string;
};

export async function checkpoints(databaseUrl: string, schema: string): Promise<Checkpoints[]> {
  return sql<Checkpoints>(
    databaseUrl,
    `SELECT chain_name, chain_id::text, latest_checkpoint, safe_checkpoint, finalized_checkpoint
       FROM "${schema}"._ponder_checkpoint`,
  );
}

/** Characters 27–42 (1-based) of a checkpoint: the block number. */
export function checkpointBlock(checkpoint: string): number {
  return Number(checkpoint.slice(26, 42));
}

/** A backend other than `except` waiting for a lock on `<schema>`.stake_event (Ponder's), or undefined. */
export async function waitingForEvents(databaseUrl: string, schema: string, except: number) {
  const rows = await sql<{ pid: number }>(
    databaseUrl,
    "SELECT l.pid FROM pg_locks l WHERE l.relation = to_regclass($1) AND NOT l.granted AND l.pid <> $2",
    [`"${schema}".stake_event`, except],
  );
  return rows[0]?.pid;
}

/** The modes of the locks backend `pid` holds on `<schema>`._ponder_checkpoint. */
export async function checkpointLocks(databaseUrl: string, schema: string, pid: number) {
  const rows = await sql<{ mode: string }>(
    databaseUrl,
    "SELECT mode FROM pg_locks WHERE pid = $1 AND relation = to_regclass($2) AND granted",
    [pid, `"${schema}"._ponder_checkpoint`],
  );
  return rows.map((l) => l.mode);
}

/** A LISTEN on `channel` from a connection of its own; `payloads` fills as notifications arrive. */
export async function listen(databaseUrl: string, channel: string) {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const payloads: string[] = [];
  client.on("notification", (message) => {
    if (message.channel === channel) payloads.push(message.payload ?? "");
  });
  await client.query(`LISTEN "${channel}"`);
  return { payloads, stop: () => client.end().catch(() => undefined) };
}

export type ObsRow = {
  seq: number;
  txid: string;
  tbl: "stake_event" | "_ponder_checkpoint" | "_ponder_meta";
  op: string;
  /** stake_event: the deleted (or inserted) row's block; _ponder_checkpoint: the new latest block. */
  block: number | null;
  detail: Record<string, unknown>;
};

/** The names of the observing triggers: none of Ponder's ("reorg", "live_query", "live_query_notify"). */
export const OBS_TRIGGERS = ["obs_stake_event_delete", "obs_checkpoint_write", "obs_meta_write"] as const;
/** installObserver's trigger on stake_event's inserts, when asked for. */
export const OBS_INSERT_TRIGGER = "obs_stake_event_insert";

/** The observer's trigger on each of Ponder's tables, as DDL: OBS_TRIGGERS, and OBS_INSERT_TRIGGER with `inserts`. */
function observerDdl(schema: string, inserts: boolean): { table: string; name: string; ddl: string }[] {
  const s = `"${schema}"`;
  return [
    {
      table: `${s}.stake_event`,
      name: "obs_stake_event_delete",
      ddl: `CREATE OR REPLACE TRIGGER obs_stake_event_delete AFTER DELETE ON ${s}.stake_event
  FOR EACH ROW EXECUTE FUNCTION obs.stake_event_deleted()`,
    },
    ...(inserts
      ? [
          {
            table: `${s}.stake_event`,
            name: OBS_INSERT_TRIGGER,
            ddl: `CREATE OR REPLACE TRIGGER ${OBS_INSERT_TRIGGER} AFTER INSERT ON ${s}.stake_event
  FOR EACH ROW EXECUTE FUNCTION obs.stake_event_inserted()`,
          },
        ]
      : []),
    {
      table: `${s}._ponder_checkpoint`,
      name: "obs_checkpoint_write",
      ddl: `CREATE OR REPLACE TRIGGER obs_checkpoint_write AFTER INSERT OR UPDATE OR DELETE ON ${s}._ponder_checkpoint
  FOR EACH ROW EXECUTE FUNCTION obs.checkpoint_written()`,
    },
    {
      table: `${s}._ponder_meta`,
      name: "obs_meta_write",
      ddl: `CREATE OR REPLACE TRIGGER obs_meta_write AFTER INSERT OR UPDATE ON ${s}._ponder_meta
  FOR EACH ROW WHEN (NEW.key = 'app') EXECUTE FUNCTION obs.meta_written()`,
    },
  ];
}

/** Schema obs: its log and the functions the observer's triggers call. */
const OBSERVER_SETUP = `
CREATE SCHEMA IF NOT EXISTS obs;
CREATE TABLE IF NOT EXISTS obs.log (
  seq bigserial PRIMARY KEY,
  txid bigint NOT NULL,
  tbl text NOT NULL,
  op text NOT NULL,
  block bigint,
  detail jsonb NOT NULL
);
CREATE OR REPLACE FUNCTION obs.stake_event_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO obs.log (txid, tbl, op, block, detail)
  VALUES (txid_current(), 'stake_event', TG_OP, OLD.block_number,
          jsonb_build_object('id', OLD.id, 'transaction_hash', OLD.transaction_hash));
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION obs.stake_event_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO obs.log (txid, tbl, op, block, detail)
  VALUES (txid_current(), 'stake_event', TG_OP, NEW.block_number, jsonb_build_object('id', NEW.id));
  RETURN NULL;
END $$;
-- Deletes too: a Ponder that emptied the checkpoint inside a reorg or a crash recovery would
-- change what the sidecar reads as much as one that updated it.
CREATE OR REPLACE FUNCTION obs.checkpoint_written() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_now record;
BEGIN
  IF TG_OP = 'DELETE' THEN row_now := OLD; ELSE row_now := NEW; END IF;
  INSERT INTO obs.log (txid, tbl, op, block, detail)
  VALUES (txid_current(), '_ponder_checkpoint', TG_OP, substring(row_now.latest_checkpoint from 27 for 16)::bigint,
          jsonb_build_object(
            'old_latest', CASE WHEN TG_OP <> 'INSERT' THEN substring(OLD.latest_checkpoint from 27 for 16)::bigint END,
            'new_latest', CASE WHEN TG_OP <> 'DELETE' THEN substring(NEW.latest_checkpoint from 27 for 16)::bigint END,
            'new_safe', CASE WHEN TG_OP <> 'DELETE' THEN substring(NEW.safe_checkpoint from 27 for 16)::bigint END,
            'new_finalized', CASE WHEN TG_OP <> 'DELETE' THEN substring(NEW.finalized_checkpoint from 27 for 16)::bigint END));
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION obs.meta_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO obs.log (txid, tbl, op, block, detail)
  VALUES (txid_current(), '_ponder_meta', TG_OP, NULL,
          jsonb_build_object('is_ready', NEW.value->'is_ready', 'is_locked', NEW.value->'is_locked'));
  RETURN NULL;
END $$;`;

/**
 * Triggers on `<schema>`.stake_event (AFTER DELETE; with `inserts`, AFTER INSERT too),
 * `<schema>`._ponder_checkpoint (AFTER INSERT, UPDATE OR DELETE) and `<schema>`._ponder_meta
 * (AFTER INSERT OR UPDATE, key 'app'), FOR EACH ROW, that log (txid_current(), a sequence number,
 * the table, a block) into obs.log.
 */
export async function installObserver(databaseUrl: string, schema: string, { inserts = false } = {}) {
  const triggers = observerDdl(schema, inserts).map((t) => `${t.ddl};`);
  await sql(databaseUrl, [OBSERVER_SETUP, ...triggers].join("\n"));
}

/**
 * The same observer on a database Ponder has not created its tables in yet (its backfill from
 * the first batch on): an event trigger adds each table's triggers as Ponder creates the table.
 */
export async function installObserverAtCreate(databaseUrl: string, schema: string, { inserts = false } = {}) {
  const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
  const attach = observerDdl(schema, inserts).map(
    (t) => `IF to_regclass(${literal(t.table)}) IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(${literal(t.table)}) AND tgname = ${literal(t.name)}) THEN
    EXECUTE ${literal(t.ddl)};
  END IF;`,
  );
  await sql(
    databaseUrl,
    `${OBSERVER_SETUP}
CREATE OR REPLACE FUNCTION obs.attach() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  ${attach.join("\n  ")}
END $$;
CREATE EVENT TRIGGER obs_attach ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION obs.attach();`,
  );
}

export async function observed(databaseUrl: string): Promise<ObsRow[]> {
  const rows = await sql<ObsRow & { seq: string; block: string | null }>(
    databaseUrl,
    "SELECT seq, txid::text, tbl, op, block, detail FROM obs.log ORDER BY seq",
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq), block: r.block === null ? null : Number(r.block) }));
}

/** Which of OBS_TRIGGERS are still on Ponder's tables in `schema`. */
export async function observerTriggers(databaseUrl: string, schema: string): Promise<string[]> {
  const rows = await sql<{ tgname: string }>(
    databaseUrl,
    `SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND t.tgname = ANY($2) ORDER BY t.tgname`,
    [schema, [...OBS_TRIGGERS]],
  );
  return rows.map((r) => r.tgname);
}

/** The log as compact lines, for a failure message or the test's output. */
export function formatLog(rows: ObsRow[]): string {
  return rows
    .map((r) => `#${r.seq} tx ${r.txid} ${r.tbl} ${r.op} block=${r.block ?? "-"} ${JSON.stringify(r.detail)}`)
    .join("\n");
}

/**
 * A stake of `victim`'s that a reorg will orphan: a chain snapshot taken before it, the stake
 * indexed by Ponder; `rows()` counts its stake_event rows, `revert()` goes back to the snapshot.
 */
export async function stakeToOrphan(stack: Stack, victim: `0x${string}`) {
  const { chain, databaseUrl, schema, ponder } = stack;
  const snapshot = await chain.publicClient.request({ method: "evm_snapshot" as never });
  const orphan = await chain.vault.stakeFor(victim, 500n);
  const rows = async () =>
    (
      await sql(databaseUrl, `SELECT 1 FROM "${schema}".stake_event WHERE transaction_hash = $1`, [
        orphan.transactionHash,
      ])
    ).length;
  await waitFor("the orphan to be indexed", async () => (await rows()) === 1, { timeoutMs: 60_000 });
  await waitIndexed(databaseUrl, schema, chain, ponder);
  const revert = () => chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
  return { orphan, rows, revert };
}

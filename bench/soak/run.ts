/**
 * The soak: the whole stack as real processes on loopback (anvil mining a block a second,
 * PostgreSQL, two `ponder start` instances each behind its own RPC proxy (two providers), two
 * sidecars reading either (PONDER_REPLICA_SCHEMAS), an SMTP peer, an alert webhook), a steady workload of
 * stakes, unstakes, slashes, sign-ups and application writes, and faults on a schedule drawn from
 * the seed. Invariants are checked against the soak's own model (./model.ts), at the end, once
 * every fault is undone and the sidecars have caught up.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { Address, Hash, Hex, TransactionReceipt } from "viem";
import { repoRoot } from "../../lib/config";
import { anvilKeys, connect, deploy, vault } from "../../lib/contracts";
import { startAnvil } from "../../lib/local/anvil";
import { startPostgres } from "../../lib/local/postgres";
import { ponderAnswering, type RunningProcess } from "../../lib/local/process";
import {
  chainEnv,
  ponderReady,
  type Spawn,
  spawnNode,
  startPonder as startLocalPonder,
  startSidecar as startLocalSidecar,
} from "../../lib/local/stack";
import { freePort } from "../../lib/ports";
import { waitFor } from "../../lib/wait";
import { createDevelopersTable } from "../../sidecar/db/developers-table";
import { LEASE_MS } from "../../sidecar/effects/outbox";
import { createLogger } from "../../sidecar/log";
import { readProgress } from "../../sidecar/sync/sql/read-progress";
import { stillWaits } from "../../sidecar/sync/sql/unwritten-developers";
import { startRpcProxy, startSmtp, startWebhook } from "../../test/helpers/peers";
import { wallets as derivedWallets } from "../../test/helpers/workload";
import { type AlertCheck, checkAlerts, type FaultRecord, INDEXER_DOWN_MARGIN_MS, stillFiring } from "./alerts";
import { Freshness } from "./freshness";
import { ChainModel } from "./model";
import { awaitingKilledClaim, welcomeViolations } from "./welcomes";
import { FRESH_MS, freshWindow, headAt as headOf } from "./window";

export const FAULT_KINDS = [
  "ponder_kill",
  "ponder_term",
  "ponder_freeze",
  "sidecar_kill",
  "sidecar_term",
  "sidecar_freeze",
  "postgres_restart",
  "rpc_slow",
  "rpc_down",
  "rpc_lagging",
  "ws_drop",
  "ws_silent",
  "reorg_shallow",
  "reorg_deep",
  "smtp_failing",
  "smtp_slow",
  "app_refuses",
  "app_migration",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type SoakOptions = { minutes: number; seed: number; faults: FaultKind[]; log?: (line: string) => void };

export type SoakReport = {
  minutes: number;
  seed: number;
  transactions: number;
  faults: Record<string, number>;
  violations: string[];
  /**
   * Checks of every row against the model at the sync's cursor during the run (before each
   * fault); skipped after a fault whose waits timed out.
   */
  checkpoints: { runs: number; rowsCompared: number; skipped: number };
  /** Faults that found nothing to act on, by kind: no WebSocket open, no email sent during it. */
  idleFaults: Record<string, number>;
  /**
   * Samples in which every row shows a stake confirmed in the last 5 s, a deep reorg's change of
   * the confirmed chain included (`ok`, `percent`); and with no row showing a stake a deep reorg
   * took back, from the revert on (`retractedAtOnce`): the stricter figure.
   */
  availability: {
    samples: number;
    ok: number;
    excluded: number;
    percent: number;
    retractedAtOnce: { ok: number; percent: number };
  };
  /**
   * Per `app_migration` fault that froze the leader inside the migration: seconds from the freeze
   * until the other sidecar led, or null when it did not lead within 30 s (a violation).
   */
  migrationTakeoverSeconds: (number | null)[];
  /** How long each stale spell lasted. */
  stalenessSeconds: { p50: number; p99: number; max: number };
  /** From a stake's confirmation to its developers row, per stake (see freshness.ts). */
  freshnessSeconds: { stakes: number; p50: number; p99: number; max: number };
  recoverySeconds: Record<string, { p50: number; max: number }>;
  /**
   * After each fault kind, how long the soak then waited for both Ponder instances to be ready
   * and current again before the next fault (a restart's schema lock, a stall after a reorg).
   */
  pondersCurrentSeconds: Record<string, { p50: number; max: number }>;
  /** Stale seconds (samples not fresh), by the fault last begun before them ("none": no fault yet). */
  staleSecondsByFault: Record<string, number>;
  /**
   * Per process: the largest resident set size sampled in the run's first and last fifth (VmRSS:
   * what it holds then, so growth shows) and the peak of the run (VmHWM, over every restart).
   */
  peakRssMb: Record<string, { firstFifth: number; lastFifth: number; peak: number }>;
  /** Per sidecar, the V8 heap in use (its /metrics), largest in the first and last fifth: a leak grows it. */
  heapUsedMb: Record<string, { firstFifth: number; lastFifth: number }>;
  emailsPerDeveloper: Record<string, number>;
  /**
   * Welcome jobs still claimed at the end by a sidecar SIGKILLed after the claim: sent once the
   * claim's 15-minute lease has ended, past the soak's end. Not violations.
   */
  welcomesAwaitingKilledClaim: string[];
  /** Faults that had to raise an alert and how many did, the rest by reason, alerts with no fault. */
  alerts: Omit<AlertCheck, "violations">;
};

const CONFIRMATIONS = 2;
/** The chain's block time (anvil's interval mining). */
const BLOCK_SECONDS = 1;
/** How an RPC outage fails, in turn: a gateway error, rate limiting, no answer (timeouts). */
const RPC_FAILURES = [503, 429, "silence"] as const;
/**
 * How a WebSocket drop goes, in turn: reset, reconnections let through at once (twice); reset,
 * and reconnections refused for 10 s (Ponder 0.17.7 then polls over HTTP until it restarts, so
 * the later WebSocket faults find that instance without one until then).
 */
const WS_DROPS = ["reset", "reset", "refused"] as const;
const INDEXER_DOWN_AFTER_MS = 5000;
const USDC = 1_000_000n;
/** A developers row's stake in raw units (USDC's 6 decimals), as text: what the model counts in. */
const RAW_STAKE = "(stake_amount * 1000000)::numeric(78,0)::text";

/** mulberry32: a small seeded generator, so a seed replays the same schedule. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The `n`th (from 1) of `ways`, in turn. */
const inTurn = <T>(ways: readonly T[], n: number) => ways[(n - 1) % ways.length] as T;
const percentile = (values: number[], p: number) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};
const spread = (values: number[]) => ({
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  max: Math.max(0, ...values),
});
/** p50 and max of each kind's values. */
const byKind = (values: Record<string, number[]>) =>
  Object.fromEntries(
    Object.entries(values).map(([kind, v]) => [kind, { p50: percentile(v, 50), max: Math.max(...v) }]),
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const say = options.log ?? (() => undefined);
  const rand = random(options.seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
  const dir = mkdtempSync(path.join(tmpdir(), "stakesync-soak-"));
  const stops: (() => Promise<unknown> | unknown)[] = [];
  try {
    // The stack.
    const postgres = await startPostgres({
      dataDir: path.join(dir, "pg"),
      port: await freePort(),
      database: "soak",
      ephemeral: true,
    });
    stops.push(() => postgres.stop());
    const anvil = await startAnvil({ port: await freePort(), blockTime: BLOCK_SECONDS });
    stops.push(() => anvil.stop());
    const owner = await connect(anvil.rpcUrl);
    const deployment = await deploy(owner);
    const ownerVault = vault(owner, deployment);
    await ownerVault.fund(10n ** 15n);
    // Two providers: each Ponder instance has its own, and the RPC faults hit the one behind the
    // instance the sidecars read.
    const rpc = await startRpcProxy(anvil.rpcUrl);
    stops.push(() => rpc.close());
    const rpcB = await startRpcProxy(anvil.rpcUrl);
    stops.push(() => rpcB.close());
    const smtp = await startSmtp();
    stops.push(() => smtp.close());
    const webhook = await startWebhook();
    stops.push(() => webhook.close());

    const db = new pg.Pool({ connectionString: postgres.url, max: 4 });
    db.on("error", () => undefined); // PostgreSQL restarts on purpose
    stops.push(() => db.end());
    // The application's table, with a column of its own that its transactions update.
    await createDevelopersTable(postgres.url, createLogger("warn"));
    await db.query("ALTER TABLE developers ADD COLUMN plan text");

    const ponderPort = await freePort();
    const env = chainEnv([{ chainId: 31337, rpcUrl: rpc.url, deployment }], {
      PONDER_REPLICA_SCHEMAS: "soak_ponder_b",
      CONFIRMATIONS: String(CONFIRMATIONS),
      POLLING_INTERVAL_MS: "200",
      DATABASE_URL: postgres.url,
      DATABASE_SCHEMA: "soak_ponder",
      PONDER_URL: `http://127.0.0.1:${ponderPort}`,
      SMTP_URL: smtp.url,
      MAIL_FROM: "stakesync <welcome@stakesync.test>",
      ALERT_WEBHOOK_URL: webhook.url,
      // reorg_correction fires for ALERT_REPEAT_MS after a correction: short, so it resolves before the end.
      ALERT_REPEAT_MS: "20000",
      INDEXER_DOWN_AFTER_MS: String(INDEXER_DOWN_AFTER_MS),
      RETRY_DELAY_MS: "500",
      RETRY_ATTEMPTS: "10",
      RECONCILE_INTERVAL_MS: "15000",
    });
    const processes: Record<string, RunningProcess> = {};
    // Every process's log, each incarnation appended as it exits: bench/.cache/logs/soak-<name>.log.
    const logDir = path.join(repoRoot, "bench", ".cache", "logs");
    mkdirSync(logDir, { recursive: true });
    const logged = new Set<string>();
    const spawn: Spawn = (name, args, childEnv) => {
      const file = path.join(logDir, `soak-${name}.log`);
      if (!logged.has(file)) rmSync(file, { force: true });
      logged.add(file);
      const spawnedAt = Date.now();
      const proc = spawnNode(name, args, childEnv);
      proc.exited.then(() => appendFileSync(file, `{"spawned_at":${spawnedAt}}\n${proc.output()}`));
      return proc;
    };
    const peak: Record<string, number[]> = { ponder: [], ponder_b: [], sidecar_a: [], sidecar_b: [] };
    const rss: Record<string, number[]> = { ponder: [], ponder_b: [], sidecar_a: [], sidecar_b: [] };
    const heap: Record<string, number[]> = { sidecar_a: [], sidecar_b: [] };
    // The two Ponder instances, by the schema each indexes into (what /status names as its source).
    // Each learns of new blocks from a WebSocket subscription (newHeads) on its provider, and
    // polls over HTTP once its WebSocket failed 9 times in a row (Ponder 0.17.7, until it
    // restarts): a refused reconnection (ws_drop) does that, so both ways are soaked.
    const ponders = {
      soak_ponder: { name: "ponder", port: ponderPort, env: { ...env, WS_URL: rpc.wsUrl }, rpc },
      soak_ponder_b: {
        name: "ponder_b",
        port: await freePort(),
        env: { ...env, ...chainEnv([{ chainId: 31337, rpcUrl: rpcB.url, deployment }]), WS_URL: rpcB.wsUrl },
        rpc: rpcB,
      },
    };
    type PonderSchema = keyof typeof ponders;
    /** What an instance has committed on the soak's chain, as the sidecar reads it. */
    const progressOf = async (schema: string) => (await readProgress(db, schema).catch(() => null))?.get(31337);
    const startPonder = async (schema: PonderSchema) => {
      const { name, port, env } = ponders[schema];
      processes[name] = startLocalPonder(env, { schema, port, spawn });
      await ponderAnswering(`http://127.0.0.1:${port}`, (processes[name] as RunningProcess).process);
    };
    const sidecarPorts = { sidecar_a: await freePort(), sidecar_b: await freePort() };
    const startSidecar = async (name: "sidecar_a" | "sidecar_b") => {
      processes[name] = await startLocalSidecar(env, { port: sidecarPorts[name], name, spawn });
    };
    // Before they start: a start that fails (a sidecar that does not build) stops those started.
    stops.push(async () => {
      for (const p of Object.values(processes)) {
        p.process.kill("SIGCONT");
        await p.stop();
      }
    });
    await Promise.all([startPonder("soak_ponder"), startPonder("soak_ponder_b")]);
    await startSidecar("sidecar_a");
    await startSidecar("sidecar_b");
    const status = async (name: "sidecar_a" | "sidecar_b") =>
      (await fetch(`http://127.0.0.1:${sidecarPorts[name]}/status`, { signal: AbortSignal.timeout(2000) })
        .then((r) => (r.ok ? r.json() : undefined))
        .catch(() => undefined)) as
        | {
            role: string;
            source: string;
            chains: { synced: number }[];
            developers: { queued: number; refused: number; unwritten: number };
          }
        | undefined;
    const leader = async () => {
      for (const name of ["sidecar_a", "sidecar_b"] as const) if ((await status(name))?.role === "leader") return name;
      return undefined;
    };
    await waitFor("a leader", async () => (await leader()) !== undefined, { timeoutMs: 120_000 });
    say("stack up");

    // The workload: owners stake for a pool of wallets; five wallets stake and unstake themselves.
    const model = new ChainModel();
    const selfKeys = anvilKeys(5) as Hex[];
    const selves = await Promise.all(selfKeys.map(async (key) => vault(await connect(anvil.rpcUrl, key), deployment)));
    const selfWallets = (
      await Promise.all(selfKeys.map(async (key) => (await connect(anvil.rpcUrl, key)).wallet.account.address))
    ).map((a) => a.toLowerCase());
    const pool = [...derivedWallets(40, `soak-${options.seed}`), ...selfWallets];
    const registered = new Set<string>();
    /** When the application inserted each row: a new row starts at 0, and the sync gets 5 s to fill it. */
    const registeredAt = new Map<string, number>();
    /** Registered without an email: the only rows whose welcome may be skipped for want of one. */
    const registeredWithoutEmail = new Set<string>();
    /** Rows a sample saw with a stake above 0: each must end activated, with a welcome job. */
    const seenStaking = new Set<string>();
    const register = async (wallet: string, email = rand() < 0.15 ? null : `${wallet.slice(2, 12)}@example.test`) => {
      if (email === null) registeredWithoutEmail.add(wallet.toLowerCase());
      await db.query("INSERT INTO developers (wallet_address, email) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
        wallet,
        email,
      ]);
      registered.add(wallet);
      registeredAt.set(wallet.toLowerCase(), Date.now());
    };
    for (const wallet of pool.slice(0, pool.length / 2)) await register(wallet);
    /**
     * A developer who signs up with an email and has never staked: a stake for them is a first
     * activation, with its welcome email (the pool's wallets have all staked a few minutes in).
     */
    let newcomers = 0;
    const newcomer = async () => {
      newcomers += 1;
      const [wallet] = derivedWallets(1, `soak-${options.seed}-newcomer-${newcomers}`) as [string];
      await register(wallet, `${wallet.slice(2, 12)}@example.test`);
      return wallet;
    };

    /** Records a receipt's events with its block's time (by hash: a reorg may replace the block). */
    const blockTimes = new Map<Hash, number>();
    const record = async (receipt: TransactionReceipt) => {
      let time = blockTimes.get(receipt.blockHash);
      if (time === undefined) {
        time = Number((await owner.publicClient.getBlock({ blockHash: receipt.blockHash })).timestamp);
        blockTimes.set(receipt.blockHash, time);
      }
      model.record(receipt, time);
    };

    let transactions = 0;
    let paused = false;
    let inFlight: Promise<unknown> = Promise.resolve();
    /**
     * Runs `work` with the workload paused, once its action in flight has landed (and been
     * recorded): the owner's transactions go one at a time (nonces), and the model is complete.
     */
    const whilePaused = async <T>(work: () => Promise<T>): Promise<T> => {
      paused = true;
      try {
        await inFlight;
        return await work();
      } finally {
        paused = false;
      }
    };
    /**
     * Runs `work` on a client of the pool's. A checked-out client reports a PostgreSQL restart on
     * itself, not on the pool: unheard, that error ended the soak. A client whose work failed is
     * discarded, not returned to the pool inside a transaction.
     */
    const onClient = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
      const client = await db.connect();
      const ignore = () => undefined;
      client.on("error", ignore);
      let failed = false;
      try {
        return await work(client);
      } catch (error) {
        failed = true;
        throw error;
      } finally {
        client.off("error", ignore); // the pool reuses the client: one listener per checkout piled up
        client.release(failed);
      }
    };
    const balance = (wallet: string) =>
      model.events.filter((e) => e.wallet === wallet).reduce((s, e) => s + e.delta, 0n);
    const act = async () => {
      const r = rand();
      const amount = BigInt(1 + Math.floor(rand() * 50)) * USDC;
      if (r < 0.35) await record(await ownerVault.stakeFor(pick(pool) as Address, amount));
      else if (r < 0.45) {
        const targets = [pick(pool), pick(pool), pick(pool)].filter((w, i, all) => all.indexOf(w) === i) as Address[];
        await record(
          await ownerVault.stakeForMany(
            targets,
            targets.map(() => amount),
          ),
        );
      } else if (r < 0.6) {
        const i = Math.floor(rand() * selves.length);
        await (selves[i] as ReturnType<typeof vault>).fund(amount);
        await record(await (selves[i] as ReturnType<typeof vault>).stake(amount));
      } else if (r < 0.7) {
        const i = Math.floor(rand() * selves.length);
        const has = balance(selfWallets[i] as string);
        if (has > 0n) await record(await (selves[i] as ReturnType<typeof vault>).unstake(has > amount ? amount : has));
      } else if (r < 0.78) {
        const wallet = pick(pool);
        const has = balance(wallet);
        if (has > 0n) await record(await ownerVault.slash(wallet as Address, has > amount ? amount : has));
      } else if (r < 0.86) {
        const wallet = pick(pool);
        if (!registered.has(wallet)) await register(wallet);
      } else if (r < 0.9) {
        await db.query("UPDATE developers SET email = $2 WHERE wallet_address = $1", [
          pick([...registered]),
          `changed-${Math.floor(rand() * 1e6)}@example.test`,
        ]);
      } else {
        // The application's own transaction on a row, held a moment, as a backend's request does
        // (a failure, a PostgreSQL restart, is logged as the workload's).
        await onClient(async (client) => {
          await client.query("BEGIN");
          await client.query("UPDATE developers SET plan = $2 WHERE wallet_address = $1", [
            pick([...registered]),
            pick(["free", "pro", "team"]),
          ]);
          await sleep(300);
          await client.query("COMMIT");
        });
      }
      transactions += r < 0.78 ? 1 : 0;
    };

    // Samples: head, developers, RSS; availability and freshness against the model.
    const heads: { at: number; head: number }[] = [];
    /** Each revert and its base: blocks a head confirmed before it count as long as it left them. */
    const reverts: { at: number; base: number }[] = [];
    /**
     * `fresh`: every row shows a stake the chain had confirmed in the last 5 s (availability).
     * `ok`: also no row shows a stake a revert in those 5 s took back (recovery and staleness).
     */
    const samples: { at: number; ok: boolean; fresh: boolean; excluded: boolean }[] = [];
    const excludeUntil = { at: 0 };
    const freshness = new Freshness();
    const readHead = async () => Number(await owner.publicClient.getBlockNumber({ cacheTime: 0 }));
    const headAt = (at: number) => headOf(heads, at);
    const sample = async () => {
      const now = Date.now();
      heads.push({ at: now, head: await readHead() });
      for (const name of Object.keys(peak)) {
        const high = processes[name]?.peakRssMb();
        if (high !== undefined) peak[name]?.push(high);
        const current = processes[name]?.rssMb();
        if (current !== undefined) rss[name]?.push(current);
      }
      const rows = await db
        .query<{ wallet: string; amount: string }>(
          `SELECT lower(wallet_address) AS wallet, ${RAW_STAKE} AS amount FROM developers`,
        )
        .catch(() => undefined);
      if (!rows || paused) {
        samples.push({ at: now, ok: false, fresh: false, excluded: true });
        return;
      }
      // Fresh: every row shows its stake at some block confirmed between 5 s ago and the read of
      // the rows, or, for 5 s after the application inserted it, the row as inserted (0). The head
      // is read again after the rows: a block mined after the first read could be applied before
      // the rows were read, and a row ahead of the first head is not stale.
      const after = await readHead().catch(() => headAt(now));
      const { from, to } = freshWindow(heads, now, after, CONFIRMATIONS, reverts);
      freshness.observe(
        model,
        new Map(rows.rows.map((row) => [row.wallet, BigInt(row.amount)])),
        headAt(now) - CONFIRMATIONS,
        now,
      );
      for (const row of rows.rows) if (BigInt(row.amount) > 0n) seenStaking.add(row.wallet);
      const inserted = (wallet: string, amount: bigint) =>
        amount === 0n && (registeredAt.get(wallet) ?? 0) > now - 5000;
      const ok = rows.rows.every((row) => {
        const amount = BigInt(row.amount);
        return inserted(row.wallet, amount) || model.amountsBetween(row.wallet, from, to).has(amount);
      });
      // amountsSince allows all that amountsBetween does: asked only when a row fails the latter.
      const stale = ok
        ? undefined
        : rows.rows.find((row) => {
            const amount = BigInt(row.amount);
            return !inserted(row.wallet, amount) && !model.amountsSince(row.wallet, from, to, now - 5000).has(amount);
          });
      const fresh = stale === undefined;
      // The first stale sample of a spell names a row, for whoever reads the log; also a spell
      // that begins as a window of excluded samples ends (those count as not fresh, and such a
      // spell went unnamed: seed 9's 4 stale samples left no line).
      const previous = samples.at(-1);
      if (stale && (previous === undefined || previous.fresh || previous.excluded)) {
        const expected = [...model.amountsSince(stale.wallet, from, to, now - 5000)].join(" or ");
        const age = ((now - (registeredAt.get(stale.wallet) ?? 0)) / 1000).toFixed(1);
        // And where each Ponder instance is: the one the sync reads may be behind, or both.
        const instances = await Promise.all(
          Object.keys(ponders).map(async (schema) => {
            const p = await progressOf(schema);
            return p ? `${schema} at ${p.latest}${p.ready ? "" : " (not ready)"}` : `${schema} unreadable`;
          }),
        );
        const fault = faultBefore(now);
        const since = fault ? `; ${((now - fault.at) / 1000).toFixed(1)} s after ${fault.kind} began` : "";
        say(
          `stale: ${stale.wallet} shows ${stale.amount}, expected ${expected} (confirmed blocks ${from}-${to}; row inserted ${age} s ago; ${instances.join(", ")}${since})`,
        );
      }
      samples.push({ at: now, ok, fresh, excluded: now < excludeUntil.at });
    };

    // Faults, one at a time, on the seed's schedule.
    const faultCounts: Record<string, number> = {};
    const faultStarts: { at: number; kind: FaultKind }[] = [];
    /** The fault last begun at or before `at`. */
    const faultBefore = (at: number) => faultStarts.filter((f) => f.at <= at).at(-1);
    const faultRecords: FaultRecord[] = [];
    /** The sidecar processes SIGKILLed: a welcome job one of them claimed waits out its lease. */
    const killedSidecarPids = new Map<number, number>();
    const recoveries: Record<string, number[]> = {};
    /** Per fault kind, how long after recovery both Ponder instances were ready and current. */
    const pondersBack: Record<string, number[]> = {};
    const stuckPonders: string[] = [];
    /** Faults that found nothing to act on (no WebSocket open; no email due), by kind. */
    const idle: Record<string, number> = {};
    const migrationTakeovers: (number | null)[] = [];
    const takeoverViolations: string[] = [];
    /** Whether the last fault's waits ended in time: if not, the next checkpoint is skipped. */
    let settled = true;
    /** A developers row as the invariants read it: stake in raw units, staked_at in seconds. */
    type Row = { wallet: string; status: string; raw: string; staked_at: number | null };
    const ROW_COLUMNS = `lower(wallet_address) AS wallet, status, ${RAW_STAKE} AS raw,
                         extract(epoch FROM staked_at)::bigint::int AS staked_at`;
    /** How a row differs from the model at confirmed `block`: stake, status, staked_at. */
    const judge = (row: Row, block: number) => {
      const problems: { column: "stake" | "status" | "staked_at"; text: string }[] = [];
      const expected = model.stakeAt(row.wallet, block);
      if (BigInt(row.raw) !== expected)
        problems.push({ column: "stake", text: `stake ${row.raw}, expected ${expected}` });
      // Below the threshold: pending if never active, else inactive; activation writes staked_at.
      const status = expected > 0n ? "active" : row.staked_at === null ? "pending" : "inactive";
      if (row.status !== status) problems.push({ column: "status", text: `status ${row.status}, expected ${status}` });
      const choices = [...model.stakedAtChoices(row.wallet, block)];
      if (!choices.includes(row.staked_at)) {
        problems.push({ column: "staked_at", text: `staked_at ${row.staked_at}, expected ${choices.join(" or ")}` });
      }
      return problems;
    };
    /**
     * The invariant at a checkpoint during the run, before each fault: in one snapshot, every row
     * the sync is not still writing (queued: a step queues every developer whose stake changed,
     * in the transaction that moves the cursor; or left unwritten by a catch-up step while Ponder
     * backfills, for the next step) equals the model at the sync's cursor. Rows the
     * application inserted in the last 5 s are left out (the next round finds them). The
     * workload pauses for it, so no transaction is mined below the cursor unrecorded.
     */
    const checkpoints = { runs: 0, rows: 0, skipped: 0, violations: [] as string[] };
    const checkpoint = async () => {
      // After a wait that timed out the sync may rightly hold rows back (a removal awaiting
      // Ponder, an activation whose stake Ponder lacks): that is for the end check to judge.
      if (!settled) {
        checkpoints.skipped += 1;
        settled = true;
        return;
      }
      // A failure (PostgreSQL restarting) skips it, uncounted.
      const snapshot = await whilePaused(() =>
        onClient(async (client) => {
          await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
          const cursor = await client.query<{ block: number }>(
            "SELECT block::int AS block FROM stakesync.cursor WHERE chain_id = 31337",
          );
          const queued = await client.query<{ wallet: string }>(
            `SELECT lower(wallet) AS wallet FROM stakesync.developer_queue WHERE state = 'pending'
             UNION SELECT wallet FROM stakesync.unwritten_developer u WHERE ${stillWaits("u")}`,
          );
          const rows = await client.query<Row>(`SELECT ${ROW_COLUMNS} FROM developers`);
          await client.query("COMMIT");
          return { block: cursor.rows[0]?.block, queued: queued.rows, rows: rows.rows };
        }),
      ).catch((error: Error) => say(`checkpoint: ${error.message}`));
      if (snapshot?.block === undefined) return;
      const { block } = snapshot;
      const skip = new Set(snapshot.queued.map((q) => q.wallet));
      const now = Date.now();
      checkpoints.runs += 1;
      for (const row of snapshot.rows) {
        if (skip.has(row.wallet) || (registeredAt.get(row.wallet) ?? 0) > now - 5000) continue;
        checkpoints.rows += 1;
        for (const { text } of judge(row, block)) {
          checkpoints.violations.push(`checkpoint at block ${block}: ${row.wallet}: ${text}`);
        }
      }
    };

    const runFault = async (kind: FaultKind) => {
      await checkpoint();
      faultCounts[kind] = (faultCounts[kind] ?? 0) + 1;
      /** A block each Ponder instance must index before the next fault (a reorg's old head). */
      let beyond: number | undefined;
      const startedAt = Date.now();
      faultStarts.push({ at: startedAt, kind });
      let expects: FaultRecord["expects"] = { none: "no rule watches it" };
      const sidecar = (await leader()) ?? "sidecar_a";
      // Ponder and RPC faults hit the instance the leader reads: the one whose loss costs most.
      const source = ((await status(sidecar))?.source ?? "soak_ponder") as PonderSchema;
      const ponder = ponders[source] ?? ponders.soak_ponder;
      say(`fault ${kind} (reading ${source})`);
      // The sidecars watch the instance PONDER_URL names; the other is Prometheus's to watch.
      const watched = source === "soak_ponder";
      switch (kind) {
        case "ponder_kill":
        case "ponder_term": {
          // Its /health stops at the signal (Ponder closes its server first); a SIGTERM's
          // shutdown then takes up to 5 s more before the process is gone. So the outage lies
          // between the two times: a page is expected only where even the shorter reaches
          // INDEXER_DOWN_AFTER_MS + INDEXER_DOWN_MARGIN_MS, none only where even the longer is
          // under INDEXER_DOWN_AFTER_MS; in between either is right (`may`).
          const signalled = Date.now();
          if (kind === "ponder_kill") await processes[ponder.name]?.kill();
          else await processes[ponder.name]?.stop();
          const gone = Date.now();
          await sleep(2000);
          await startPonder(source);
          const back = Date.now();
          const [least, most] = [back - gone, back - signalled];
          say(`  ${source} did not answer for ${(least / 1000).toFixed(1)}–${(most / 1000).toFixed(1)} s`);
          expects = !watched
            ? { none: "the second instance" }
            : least >= INDEXER_DOWN_AFTER_MS + INDEXER_DOWN_MARGIN_MS
              ? "indexer_down"
              : most < INDEXER_DOWN_AFTER_MS
                ? { none: "down for less than INDEXER_DOWN_AFTER_MS" }
                : { none: "down for about INDEXER_DOWN_AFTER_MS: a page or none", may: "indexer_down" };
          break;
        }
        case "ponder_freeze": {
          // SIGSTOP at whatever it was doing: between blocks mostly, inside a block's or a
          // reorg's transaction at times (then its locks stay with it; see indexer-watch.ts).
          processes[ponder.name]?.process.kill("SIGSTOP");
          await sleep(15_000);
          processes[ponder.name]?.process.kill("SIGCONT");
          expects = watched ? "indexer_down" : { none: "the second instance" };
          break;
        }
        case "sidecar_kill":
        case "sidecar_term":
          expects = { none: "a sidecar (Prometheus watches them)" };
          if (kind === "sidecar_kill") {
            const pid = processes[sidecar]?.process.pid;
            if (pid !== undefined) killedSidecarPids.set(pid, Date.now());
            await processes[sidecar]?.kill();
          } else await processes[sidecar]?.stop();
          await sleep(2000);
          await startSidecar(sidecar);
          break;
        case "sidecar_freeze":
          expects = { none: "a sidecar (Prometheus watches them)" };
          processes[sidecar]?.process.kill("SIGSTOP");
          await sleep(15_000);
          processes[sidecar]?.process.kill("SIGCONT");
          break;
        case "postgres_restart": {
          // In turn: a clean stop (a shutdown checkpoint: nothing committed is lost) and a crash
          // (the postmaster's immediate shutdown: what the WAL buffers held is lost, which the
          // sync's steps may be, as they commit without waiting for the flush; Ponder's
          // transactions with events wait for a local flush (durable-ponder.ts), and the outbox's
          // claims and sends for theirs, a claim flushing the steps before it). A newcomer's first activation just before, so that a welcome email is due
          // around it.
          expects = { none: "no sidecar leads while PostgreSQL is down" };
          const how = inTurn(["stop", "crash"] as const, faultCounts[kind] ?? 1);
          await whilePaused(async () => record(await ownerVault.stakeFor((await newcomer()) as Address, 5n * USDC)));
          await sleep(rand() * 4000);
          excludeUntil.at = Date.now() + 60_000;
          say(`  PostgreSQL ${how === "crash" ? "crashed (immediate shutdown)" : "stopped"}`);
          if (how === "crash") await postgres.crash();
          else await postgres.instance.stop();
          await sleep(2000);
          await postgres.instance.start();
          excludeUntil.at = Date.now();
          break;
        }
        case "rpc_slow":
          expects = { none: "a slow provider still answers" };
          ponder.rpc.state.delayMs = 3000;
          await sleep(10_000);
          ponder.rpc.state.delayMs = 0;
          break;
        case "rpc_down":
          expects = watched ? "rpc_failing" : { none: "the second instance's provider" };
          // 503, 429 and no answer at all in turn (by count, so the seed's schedule stays as it was).
          ponder.rpc.state.failWith = inTurn(RPC_FAILURES, faultCounts[kind] ?? 1);
          say(`  the provider answers ${ponder.rpc.state.failWith}`);
          ponder.rpc.state.down = true;
          await sleep(10_000);
          ponder.rpc.state.down = false;
          break;
        case "rpc_lagging":
          // A backup provider behind the head: 50 blocks (past Ponder's 30-block finality on this
          // chain, so Ponder refuses its head and stalls) or 10 (within it: Ponder takes the older
          // head for a reorg, deletes the rows above it and lowers its checkpoint).
          expects = { none: "a lagging provider still answers" };
          ponder.rpc.state.lagBlocks = rand() < 0.5 ? 50 : 10;
          await sleep(15_000);
          ponder.rpc.state.lagBlocks = 0;
          break;
        case "ws_drop":
        case "ws_silent": {
          // The instance the leader reads, unless it has no WebSocket open (it polls since a
          // refused reconnection) and the other has.
          const other = Object.values(ponders).find((p) => p !== ponder) ?? ponder;
          const { rpc } = ponder.rpc.webSockets() === 0 && other.rpc.webSockets() > 0 ? other : ponder;
          if (rpc.webSockets() === 0) {
            idle[kind] = (idle[kind] ?? 0) + 1;
            say("  no WebSocket open: both instances poll since a refused reconnection");
          }
          expects = { none: "Ponder reconnects, or polls; the other instance is read meanwhile" };
          if (kind === "ws_drop") {
            const how = inTurn(WS_DROPS, faultCounts[kind] ?? 1);
            rpc.state.wsRefused = how === "refused";
            say(`  ${rpc.dropWebSockets()} WebSocket(s) reset${how === "refused" ? ", reconnections refused" : ""}`);
            await sleep(10_000);
            rpc.state.wsRefused = false;
          } else {
            say(`  ${rpc.webSockets()} WebSocket(s) silent`);
            rpc.state.wsSilent = true;
            await sleep(15_000);
            rpc.speak();
          }
          say(`  ${rpc.webSockets()} WebSocket(s) open now`);
          break;
        }
        case "reorg_shallow":
        case "reorg_deep":
          // The workload's action in flight lands first, recorded before the revert.
          await whilePaused(async () => {
            const snapshot = await owner.publicClient.request({ method: "evm_snapshot" as never });
            const base = await readHead();
            // A stake the reorg takes back: a registered developer's (the correction the sidecar
            // must make, audit and alert), or a newcomer's first (a shallow reorg: no activation,
            // no email; a deep one: the activation and its email stand, the row turns inactive).
            const wallet = rand() < 0.5 ? await newcomer() : pick([...registered]);
            const stake = await ownerVault.stakeFor(wallet as Address, 7n * USDC);
            await record(stake);
            // Every other time the new fork mines the orphaned transaction again, a block higher
            // than it was: the same transaction, another event id (README "The sidecar", step 3: counted once).
            const remine = inTurn([false, true], faultCounts[kind] ?? 1);
            const raw = remine
              ? ((await owner.publicClient.request({
                  method: "eth_getRawTransactionByHash" as never,
                  params: [stake.transactionHash] as never,
                })) as Hex)
              : undefined;
            const depth = kind === "reorg_deep" ? CONFIRMATIONS + 4 : 1;
            await waitFor("blocks to reorg", async () => (await readHead()) >= base + depth, { timeoutMs: 30_000 });
            const head = await readHead();
            // A deep reorg must be reported when it changes a row: when the row shows the stake it takes back.
            const row = await db
              .query<{ amount: string }>(
                `SELECT ${RAW_STAKE} AS amount FROM developers WHERE lower(wallet_address) = $1`,
                [wallet.toLowerCase()],
              )
              .catch(() => undefined);
            const shown =
              row?.rows[0] && BigInt(row.rows[0].amount) === model.stakeAt(wallet.toLowerCase(), head - CONFIRMATIONS);
            expects =
              kind === "reorg_shallow"
                ? { none: "inside CONFIRMATIONS" }
                : shown
                  ? remine
                    ? { none: "the stake came back on the new fork", may: "reorg_correction" }
                    : "reorg_correction"
                  : { none: row?.rows[0] ? "the row did not show the stake yet" : "no developers row" };
            // What the chain had confirmed is read last: blocks mined meanwhile may have confirmed
            // the stake, which makes even a "shallow" reorg a deep one. With mining stopped from
            // that read to the revert: a block mined between the two (seed 4) confirmed a
            // "shallow" reorg's stake, which the sync applied and, orphaned, took back 1.75 s
            // later, while the model had it as never confirmed.
            const mining = (seconds: number) =>
              owner.publicClient.request({ method: "evm_setIntervalMining" as never, params: [seconds] as never });
            await mining(0);
            try {
              const last = await readHead();
              beyond = last;
              // The old fork's last head is a head the chain had, which the quarter-second
              // samples can miss (seed 13: a block mined 0.1 s before the revert confirmed a
              // block the revert left; the sync applied it, and the window, which never saw
              // that head, counted the row stale for 1 s).
              heads.push({ at: Date.now(), head: last });
              await owner.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
              reverts.push({ at: Date.now(), base });
              model.revertTo(base, kind === "reorg_deep" || last - CONFIRMATIONS > base, last, last - CONFIRMATIONS);
              if (raw !== undefined) {
                const rpc = (method: string, params: unknown[] = []) =>
                  owner.publicClient.request({ method: method as never, params: params as never });
                await rpc("evm_mine"); // an empty block first: the transaction lands a block higher
                const hash = (await rpc("eth_sendRawTransaction", [raw])) as Hash;
                await rpc("evm_mine");
                const again = await owner.publicClient.getTransactionReceipt({ hash });
                await record(again);
                heads.push({ at: Date.now(), head: await readHead() });
                say(`  the orphaned stake mined again on the new fork, at block ${again.blockNumber}`);
              }
            } finally {
              await mining(BLOCK_SECONDS);
            }
          });
          break;
        case "smtp_failing":
        case "smtp_slow": {
          // A first activation during the fault, so a welcome email falls due in it.
          const receiving = smtp.state.receiving;
          await whilePaused(async () => record(await ownerVault.stakeFor((await newcomer()) as Address, 5n * USDC)));
          if (kind === "smtp_failing") {
            expects = { none: "within the retry budget" };
            smtp.state.failing = true;
            await sleep(15_000);
            smtp.state.failing = false;
          } else {
            // 5 s before each answer, the message already received: a send that gave up and
            // retried would deliver it twice. Inside the mailer's deadline (240 s), so none may.
            expects = { none: "a slow server still answers" };
            smtp.state.delayMs = 5000;
            await sleep(20_000);
            smtp.state.delayMs = 0;
          }
          if (smtp.state.receiving === receiving) {
            idle[kind] = (idle[kind] ?? 0) + 1;
            say("  no email was sent during it");
          }
          break;
        }
        case "app_refuses": {
          // The application deploys a rule that refuses every change of a developer's stake or
          // status (a trigger, as a migration by mistake would), and rolls it back 15 s later; its
          // own column stays writable. A stake for a registered developer during it, so that a row
          // is refused: a dead letter each (dead_letter; developers_refused too once
          // ALERT_AFTER_REFUSED of them), the others written, and the refused rows written by
          // themselves once the rule is gone (a reconciliation, RECONCILE_INTERVAL_MS after the
          // first refusal). The application's doing, not the sync's: those samples are excluded
          // until the refused rows are written.
          excludeUntil.at = Number.POSITIVE_INFINITY;
          // The trigger counts its refusals in a sequence (not rolled back with the refused
          // write): whether a page is due is the soak's own count, not the sidecar's /status.
          await db.query(`DROP TRIGGER IF EXISTS soak_refuse ON developers;
            CREATE SEQUENCE IF NOT EXISTS soak_refusals;
            CREATE OR REPLACE FUNCTION soak_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN PERFORM nextval('soak_refusals');
                    RAISE EXCEPTION 'the application refuses stake changes for now'; END $$;
            CREATE TRIGGER soak_refuse BEFORE UPDATE ON developers FOR EACH ROW
              WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.stake_amount IS DISTINCT FROM NEW.stake_amount)
              EXECUTE FUNCTION soak_refuse()`);
          const refusals = async () =>
            Number(
              (
                await db.query<{ n: string }>(
                  "SELECT CASE WHEN is_called THEN last_value ELSE 0 END::text AS n FROM soak_refusals",
                )
              ).rows[0]?.n,
            );
          const refusalsBefore = await refusals();
          try {
            await whilePaused(async () =>
              record(await ownerVault.stakeFor(pick([...registered]) as Address, 3n * USDC)),
            );
            await sleep(15_000);
            const refusedWrites = (await refusals()) - refusalsBefore;
            const refused = Math.max(
              ...(await Promise.all(
                (["sidecar_a", "sidecar_b"] as const).map(async (n) => (await status(n))?.developers.refused ?? 0),
              )),
            );
            say(`  ${refusedWrites} write(s) refused; ${refused} developers row(s) refused, the sidecars say`);
            if (refusedWrites > 0) expects = "dead_letter";
            else {
              idle[kind] = (idle[kind] ?? 0) + 1;
              expects = { none: "no row was refused during it" };
            }
          } finally {
            await db.query("DROP TRIGGER IF EXISTS soak_refuse ON developers");
          }
          await waitFor(
            "the refused rows written",
            async () => (await status((await leader()) ?? "sidecar_a"))?.developers.refused === 0,
            { timeoutMs: 120_000, intervalMs: 250 },
          ).catch(() => say("  refused rows still not written 2 minutes on"));
          excludeUntil.at = Date.now();
          break;
        }
        case "app_migration": {
          // The application migrates developers as a deploy does, in a transaction held for 15 s
          // (ACCESS EXCLUSIVE: every read and write of the table waits), a stake for a
          // registered developer confirming meanwhile, so the sync has a row waiting. In turn:
          // ADD COLUMN (the catalog only) or ADD COLUMN with a volatile default (the table
          // rewritten: a step whose snapshot predates it would find it empty); and every other
          // time the leader is frozen 3 s in, once the soak has seen a sidecar wait for the
          // table (else the fault found nothing to act on), until the other sidecar leads (the
          // sync's waits for the table are sliced) or 30 s have passed: a violation, a frozen
          // leader stalling everyone. The thawed one must send nothing. The column stays, as a
          // migration's does. The application's doing: samples are excluded until FRESH_MS
          // after it commits, which leaves the sync that long to catch up.
          expects = { none: "the sync waits for the application's migration" };
          excludeUntil.at = Number.POSITIVE_INFINITY;
          const n = faultCounts[kind] ?? 1;
          const freeze = inTurn([true, false], n);
          const rewrite = inTurn([false, false, true, true], n);
          const migration = new pg.Client({ connectionString: postgres.url });
          migration.on("error", () => undefined);
          let frozen: string | undefined;
          try {
            // The stake first: the workload's own insert may wait for the migration, and the
            // stake waits for the workload's action in flight. It confirms inside the migration.
            await whilePaused(async () =>
              record(await ownerVault.stakeFor(pick([...registered]) as Address, 2n * USDC)),
            );
            await migration.connect();
            await migration.query("BEGIN");
            await migration.query(
              `ALTER TABLE developers ADD COLUMN soak_migration_${n} ${rewrite ? "timestamptz DEFAULT clock_timestamp()" : "text"}`,
            );
            const began = Date.now();
            say(
              `  developers held by a migration${rewrite ? " that rewrites it" : ""}${freeze ? `, ${sidecar} to be frozen inside it` : ""}`,
            );
            await sleep(Math.max(0, began + 3000 - Date.now()));
            // A sidecar's session waiting for the table: the leader's step or write.
            const waiting = await waitFor(
              "a sidecar waiting for developers",
              async () =>
                (
                  await db.query(
                    `SELECT 1 FROM pg_stat_activity
                      WHERE application_name LIKE 'stakesync_sidecar%' AND wait_event_type = 'Lock'`,
                  )
                ).rows.length > 0,
              { timeoutMs: 5000, intervalMs: 100 },
            ).then(
              () => true,
              () => false,
            );
            if (!waiting) {
              idle[kind] = (idle[kind] ?? 0) + 1;
              say("  no sidecar waited for the table");
            }
            if (freeze && waiting) {
              frozen = sidecar;
              const frozeAt = Date.now();
              processes[sidecar]?.process.kill("SIGSTOP");
              const other = sidecar === "sidecar_a" ? "sidecar_b" : "sidecar_a";
              const led = await waitFor(
                "the other sidecar to lead",
                async () => (await status(other))?.role === "leader",
                {
                  timeoutMs: 30_000,
                  intervalMs: 250,
                },
              ).then(
                () => (Date.now() - frozeAt) / 1000,
                () => null,
              );
              migrationTakeovers.push(led);
              if (led === null) {
                takeoverViolations.push(
                  `app_migration: ${other} did not lead within 30 s of the leader's freeze while the migration held developers`,
                );
              }
              say(
                led === null
                  ? `  ${other} did not lead while the migration held developers`
                  : `  ${other} led ${led.toFixed(1)} s after the freeze`,
              );
              await sleep(Math.max(0, frozeAt + 8000 - Date.now()));
              processes[sidecar]?.process.kill("SIGCONT");
              frozen = undefined;
            }
            await sleep(Math.max(0, began + 15_000 - Date.now()));
            await migration.query("COMMIT");
          } finally {
            if (frozen) processes[frozen]?.process.kill("SIGCONT");
            await migration.end().catch(() => undefined);
            excludeUntil.at = Date.now() + FRESH_MS;
          }
          break;
        }
      }
      const ended = Date.now();
      await waitFor(
        `recovery after ${kind}`,
        () => {
          const last = samples.at(-1);
          return last !== undefined && last.at > ended && last.ok;
        },
        { timeoutMs: 180_000, intervalMs: 250 },
      ).catch(() => {
        settled = false;
      });
      recoveries[kind] = [...(recoveries[kind] ?? []), (Date.now() - ended) / 1000];
      faultRecords.push({ kind, at: startedAt, recoveredAt: Date.now(), endedAt: ended, expects });
      // One fault at a time: the next waits until both Ponder instances are ready and current
      // again, or a fault on one would find the other still down from the last, which two
      // instances do not protect against. A restarted Ponder cannot start until its schema lock
      // expires (15-25 s); one that was fetching a block a reorg took back retries its logs for
      // about a minute before it moves on (Ponder's RPC retries: 10, from 125 ms doubling).
      // Current is also past a block mined after the fault (past the old head, after a reorg): an
      // instance still on a reorg's old fork shows a height the new fork has not reached, and one
      // that stalls retrying a block the reorg took back does so only once it sees the new fork,
      // which may be after the first check (the soak, seed 2: a kill then hit the other instance).
      const past = beyond ?? (await readHead());
      const current = async () => {
        const head = await readHead();
        const states = await Promise.all(
          Object.entries(ponders).map(async ([schema, p]) => {
            const at = (await progressOf(schema))?.latest ?? 0;
            return (await ponderReady(`http://127.0.0.1:${p.port}`)) && at >= head - CONFIRMATIONS && at > past;
          }),
        );
        return states.every(Boolean);
      };
      // How long that took is reported; an instance stuck for 2 minutes is a violation.
      const waitFrom = Date.now();
      await waitFor("both Ponder instances ready and current", current, { timeoutMs: 120_000, intervalMs: 500 }).catch(
        () => {
          settled = false;
          stuckPonders.push(`a Ponder instance was not ready and current 2 minutes after a fault ${kind}`);
        },
      );
      pondersBack[kind] = [...(pondersBack[kind] ?? []), (Date.now() - waitFrom) / 1000];
    };

    const deadline = Date.now() + options.minutes * 60_000;
    const workload = (async () => {
      while (Date.now() < deadline) {
        if (!paused) {
          inFlight = act().catch((error: Error) => say(`workload: ${error.message.split("\n")[0]}`));
          await inFlight;
        }
        await sleep(200 + rand() * 300);
      }
    })();
    const heapSampler = (async () => {
      while (Date.now() < deadline) {
        for (const name of ["sidecar_a", "sidecar_b"] as const) {
          const text = await fetch(`http://127.0.0.1:${sidecarPorts[name]}/metrics`, {
            signal: AbortSignal.timeout(2000),
          })
            .then((r) => r.text())
            .catch(() => "");
          const bytes = text.match(/^nodejs_heap_size_used_bytes (\S+)/m)?.[1];
          if (bytes) heap[name]?.push(Number(bytes) / 2 ** 20);
        }
        await sleep(5000);
      }
    })();
    // Sampling goes on until the last fault is over: a fault ending after the deadline waits for
    // a fresh sample (it once waited its full 180 s for one and reported that as its recovery).
    let faultsOver = false;
    const sampler = (async () => {
      while (Date.now() < deadline || !faultsOver) {
        await sample().catch(() => undefined);
        await sleep(250);
      }
    })();
    const faults = (async () => {
      try {
        await sleep(10_000);
        while (options.faults.length > 0 && Date.now() < deadline - 15_000) {
          await runFault(pick(options.faults));
          await sleep(5000 + rand() * 10_000);
        }
      } finally {
        faultsOver = true;
      }
    })();
    await Promise.all([workload, sampler, heapSampler, faults]);

    // Settle: every fault undone; both sidecars up; synced to the confirmed block, queue empty.
    say("settling");
    // Past the last event's block, not just the head's confirmed block at this moment: an event in
    // the last CONFIRMATIONS blocks would otherwise be applied after `confirmed` is read below,
    // and the rows compared with the model at too early a block (the soak's own race, once taken
    // for a defect of stakesync's).
    const lastEvent = Math.max(0, ...model.events.map((e) => e.block));
    const target = Math.max((await readHead()) - CONFIRMATIONS, lastEvent);
    await waitFor(
      "the sidecars to catch up after the run",
      async () => {
        const name = await leader();
        const s = name ? await status(name) : undefined;
        return (s?.chains[0]?.synced ?? 0) >= target && s?.developers.queued === 0 && s.developers.unwritten === 0;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );
    // Every alert resolves once its fault is undone: reorg_correction ALERT_REPEAT_MS after the last correction.
    await waitFor("every alert to resolve", async () => stillFiring(webhook.alerts).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
    }).catch(() => undefined);
    const name = (await leader()) as "sidecar_a" | "sidecar_b";
    const confirmed = (await status(name))?.chains[0]?.synced ?? 0;
    await sleep(5000); // the outbox worker's last sends

    // Invariants, against the model.
    const violations: string[] = [];
    // Receipts decide what is canonical: a transaction a reorg dropped has none any more.
    for (const e of [...model.events]) {
      const receipt = await owner.publicClient.getTransactionReceipt({ hash: e.tx }).catch(() => undefined);
      if (!receipt || Number(receipt.blockNumber) !== e.block) {
        violations.push(`model: transaction ${e.tx} is not on the chain as recorded`);
      }
    }
    const { rows } = await db.query<Row>(`SELECT ${ROW_COLUMNS} FROM developers`);
    for (const row of rows) {
      const expected = model.stakeAt(row.wallet, confirmed);
      const problems = judge(row, confirmed);
      for (const { text } of problems.filter((p) => p.column !== "stake")) violations.push(`${row.wallet}: ${text}`);
      if (problems.some((p) => p.column === "stake")) {
        // What each layer holds, for whoever reads the violation.
        const layers = await db.query<{ ponder: string; ledger: string; chain_stake: string; audit: string }>(
          `SELECT (SELECT coalesce(sum(CASE kind WHEN 'staked' THEN amount ELSE -amount END), 0)::text
                     FROM soak_ponder.stake_event WHERE developer = $1 AND block_number <= $2) AS ponder,
                  (SELECT coalesce(sum(delta), 0)::text FROM stakesync.applied_event WHERE wallet = $1) AS ledger,
                  (SELECT coalesce(sum(amount), 0)::text FROM stakesync.chain_stake WHERE wallet = $1) AS chain_stake,
                  (SELECT string_agg(reason || ' ' || new_amount::text, ', ' ORDER BY id) FROM stakesync.audit
                    WHERE wallet = $1) AS audit`,
          [row.wallet, confirmed],
        );
        const l = layers.rows[0];
        violations.push(
          `${row.wallet}: stake ${row.raw}, expected ${expected} (Ponder ${l?.ponder}, chain_stake ${l?.chain_stake}, ledger ${l?.ledger}; audit ${l?.audit})`,
        );
      }
      const onChain = await ownerVault.stakeOf(row.wallet as Address, BigInt(confirmed));
      if (onChain !== expected) violations.push(`${row.wallet}: the model says ${expected}, stakeOf() ${onChain}`);
    }
    const emails: Record<string, number> = {};
    for (const mail of smtp.mails) {
      const wallet = mail.raw.match(/^Message-ID:\s*<welcome\.(0x[0-9a-f]{40})@/im)?.[1];
      if (wallet) emails[wallet] = (emails[wallet] ?? 0) + 1;
    }
    for (const [wallet, n] of Object.entries(emails)) {
      if (n > 1) violations.push(`${wallet}: ${n} welcome emails`);
      // None for a stake a reorg took back before it was confirmed: the developer must have been
      // active at a confirmed block, of the chain as it is or as it was before a deep reorg.
      if (![...model.stakedAtChoices(wallet, confirmed)].some((t) => t !== null)) {
        violations.push(`${wallet}: a welcome email, never active at a confirmed block`);
      }
    }
    const { rows: jobs } = await db.query<{
      wallet: string;
      state: string;
      holder: string | null;
      claimed: Date | null;
      skip_reason: string | null;
    }>(
      `SELECT wallet, state, skip_reason, CASE WHEN locked_until > now() THEN locked_by END AS holder,
              CASE WHEN locked_until > now() THEN locked_until - make_interval(secs => $1::double precision / 1000) END
                AS claimed
         FROM stakesync.outbox WHERE kind = 'welcome_email'`,
      [LEASE_MS],
    );
    const waitingOutKill = awaitingKilledClaim(
      jobs.map((j) => ({ ...j, claimedAt: j.claimed?.getTime() ?? null })),
      killedSidecarPids,
      (wallet) => (emails[wallet] ?? 0) > 0,
    );
    // Every developer the sync ever activated (staked_at is written then), active now or not.
    violations.push(
      ...welcomeViolations({
        rows,
        jobs: jobs.map((j) => ({ wallet: j.wallet, state: j.state, skipReason: j.skip_reason })),
        emails,
        seenStaking,
        registeredWithoutEmail,
        waitingOutKill,
      }),
    );
    const { rows: duplicates } = await db.query(
      "SELECT chain_id, event_key FROM stakesync.applied_event GROUP BY 1, 2 HAVING count(*) > 1",
    );
    for (const d of duplicates) violations.push(`applied twice: ${d.event_key}`);
    // A `reorg` audit row names a height a deep reorg replaced: a stake taken back, or one the new
    // fork mined below the sync's cursor (a step may add it with the next CONFIRMATIONS blocks).
    const { rows: reorgs } = await db.query<{ wallet: string; block: number }>(
      "SELECT lower(wallet) AS wallet, block_number::int AS block FROM stakesync.audit WHERE reason = 'reorg'",
    );
    for (const r of reorgs) {
      if (model.deepReorgs.some((d) => r.block > d.from && r.block <= d.to + CONFIRMATIONS)) continue;
      const reorgs = model.deepReorgs.map((d) => `${d.from + 1}-${d.to}`).join(", ") || "none";
      violations.push(`audit: reorg at block ${r.block} for ${r.wallet}; deep reorgs replaced blocks ${reorgs}`);
    }
    for (const rule of stillFiring(webhook.alerts)) violations.push(`alert ${rule} fired and never resolved`);
    const { violations: missed, ...alertCheck } = checkAlerts(faultRecords, webhook.alerts);
    violations.push(...missed, ...stuckPonders, ...takeoverViolations, ...checkpoints.violations);

    const counted = samples.filter((s) => !s.excluded);
    const ok = counted.filter((s) => s.ok).length;
    const fresh = counted.filter((s) => s.fresh).length;
    const share = (n: number) => (counted.length === 0 ? 0 : Math.round((n / counted.length) * 100_000) / 1000);
    // Freshness: per sample, how long the developers table had been stale (0 when fresh).
    const stale: number[] = [];
    let staleSince: number | undefined;
    for (const s of counted) {
      if (!s.ok) staleSince ??= s.at;
      else {
        stale.push(staleSince === undefined ? 0 : (s.at - staleSince) / 1000);
        staleSince = undefined;
      }
    }
    const staleByFault: Record<string, number> = {};
    for (const s of counted) {
      if (s.ok) continue;
      const cause = faultBefore(s.at)?.kind ?? "none";
      staleByFault[cause] = (staleByFault[cause] ?? 0) + 0.25; // a sample every 250 ms
    }
    const fifth = (values: number[], last: boolean) => {
      const n = Math.max(1, Math.floor(values.length / 5));
      const part = last ? values.slice(-n) : values.slice(0, n);
      return Math.round(Math.max(0, ...part));
    };
    return {
      minutes: options.minutes,
      seed: options.seed,
      transactions,
      faults: faultCounts,
      violations,
      checkpoints: { runs: checkpoints.runs, rowsCompared: checkpoints.rows, skipped: checkpoints.skipped },
      idleFaults: idle,
      availability: {
        samples: samples.length,
        ok: fresh,
        excluded: samples.length - counted.length,
        percent: share(fresh),
        retractedAtOnce: { ok, percent: share(ok) },
      },
      migrationTakeoverSeconds: migrationTakeovers,
      stalenessSeconds: spread(stale),
      freshnessSeconds: { stakes: freshness.seconds.length, ...spread(freshness.seconds) },
      pondersCurrentSeconds: byKind(pondersBack),
      recoverySeconds: byKind(recoveries),
      staleSecondsByFault: staleByFault,
      peakRssMb: Object.fromEntries(
        Object.entries(peak).map(([name, values]) => [
          name,
          {
            firstFifth: fifth(rss[name] ?? [], false),
            lastFifth: fifth(rss[name] ?? [], true),
            peak: Math.round(Math.max(0, ...values)),
          },
        ]),
      ),
      heapUsedMb: Object.fromEntries(
        Object.entries(heap).map(([name, values]) => [
          name,
          { firstFifth: fifth(values, false), lastFifth: fifth(values, true) },
        ]),
      ),
      emailsPerDeveloper: emails,
      welcomesAwaitingKilledClaim: [...waitingOutKill],
      alerts: alertCheck,
    };
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Configuration from the environment, parsed once and validated (the README's variable tables).
 * Every consumer (ponder.config.ts, the sidecar, the scripts) calls a loader here and receives
 * a typed object; nothing else reads process.env.
 *
 * An empty value counts as unset: `npm start` blanks every key of .env.local that the real
 * environment lacks, so Ponder's own dotenv cannot fill production settings with local defaults.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { isAddress } from "viem";
import { z } from "zod";

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
  ) {
    super(`${variable}: expected ${expected}`);
    this.name = "ConfigError";
  }
}

/** Validates one variable; the error names it and what was expected, never its value. */
function read<T>(env: Env, name: string, schema: z.ZodType<T>, expected: string): T {
  const raw = env[name];
  const result = schema.safeParse(raw === undefined || raw.trim() === "" ? undefined : raw.trim());
  if (!result.success) throw new ConfigError(name, expected);
  return result.data;
}

const int = (min: number) => z.coerce.number().int().min(min);
/**
 * Node's longest timer: a longer one fires after 1 ms (a poll "turned off" would spin). For the
 * settings that are timers; the others are only compared with the clock.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const ms = (min: number) => int(min).max(MAX_TIMER_MS);
const msExpected = (min: number) => `milliseconds from ${min} to ${MAX_TIMER_MS}`;
const httpUrl = z.url({ protocol: /^https?$/ });
const wsUrl = z.url({ protocol: /^wss?$/ });
/**
 * Lowercased. In mixed case it is EIP-55 checksummed, and a wrong checksum is a typo (a contract
 * with no events, indexed in silence). isAddress alone of viem: the sidecar's bundle keeps only
 * what it uses (lib/local/process.ts).
 */
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/)
  .refine((v) => /^0x([0-9a-f]{40}|[0-9A-F]{40})$/.test(v) || isAddress(v, { strict: true }))
  .transform((v) => v.toLowerCase() as `0x${string}`);
const urlList = z
  .string()
  .transform((v) => v.split(",").map((u) => u.trim()))
  .pipe(z.array(httpUrl).min(1));

export type ChainConfig = {
  id: number;
  /** Ponder's chain name, also used in logs. */
  name: string;
  /** The first URL is primary, the others are fallbacks in order. */
  rpcUrls: string[];
  wsUrl: string | undefined;
  stakeVault: `0x${string}`;
  startBlock: number;
  confirmations: number;
  pollingIntervalMs: number;
  /** Max blocks per eth_getLogs; undefined lets Ponder learn it from provider errors. */
  getLogsBlockRange: number | undefined;
  /**
   * Ponder starts every RPC endpoint at 20 requests/s and raises that 5% at a time; a private
   * node takes far more. With n lanes a single RPC_URL is given to Ponder n times: n × 20 at start.
   */
  rpcLanes: number;
  /**
   * EFFECTS_FROM_BLOCK(_<id>): a first activation by a stake in an earlier block sends no welcome
   * email (the job is recorded skipped, 'historic'): a cut-over from a system that welcomed them.
   */
  effectsFromBlock: number | undefined;
  /**
   * HEAD_STILL_MS(_<id>): a head that has not moved for this long counts as unknown (/ready 503,
   * `rpc_failing`), as when the provider fails: a node stuck on an old block. Unset: never (a
   * chain that mines only on demand, as anvil does in development).
   */
  headStillMs: number | undefined;
  /** How this chain's variables end, for messages: "" (START_BLOCK, …) or "_<id>" with CHAINS. */
  suffix: string;
};

const HEAD_STILL_MIN_MS = 10_000;

function readChain(env: Env, id: number, suffix: string): ChainConfig {
  const v = (name: string) => `${name}${suffix}`;
  /** NAME_<id> when set, else NAME, else the default. */
  const perChain = (name: string, schema: ReturnType<typeof int>, fallback: number, expected: string) =>
    read(env, v(name), schema.optional(), expected) ?? read(env, name, schema.default(fallback), expected);
  return {
    id,
    name: `chain${id}`,
    rpcUrls: read(env, v("RPC_URL"), urlList, "one or more http(s) URLs, comma-separated"),
    wsUrl: read(env, v("WS_URL"), wsUrl.optional(), "a ws(s) URL"),
    stakeVault: read(
      env,
      v("STAKE_VAULT_ADDRESS"),
      address,
      "the StakeVault contract address (0x + 40 hex digits; in mixed case, a valid EIP-55 checksum)",
    ),
    startBlock: read(env, v("START_BLOCK"), int(0).default(0), "a block number ≥ 0"),
    confirmations: perChain("CONFIRMATIONS", int(0), 2, "a whole number of blocks ≥ 0"),
    pollingIntervalMs: perChain("POLLING_INTERVAL_MS", ms(100), 1000, `${msExpected(100)} (Ponder refuses less)`),
    getLogsBlockRange: read(env, v("GETLOGS_BLOCK_RANGE"), int(1).optional(), "a whole number of blocks ≥ 1"),
    rpcLanes: perChain("RPC_LANES", int(1).max(64), 1, "a whole number from 1 to 64"),
    // At least HEAD_STALE_MS (chain-heads.ts, 10 s, five of the head polls): under it, the head
    // polled every 2 s stood "still" for the end of each interval on a chain that moves every
    // poll, and /ready and `rpc_failing` flapped every few seconds.
    headStillMs:
      read(env, v("HEAD_STILL_MS"), ms(HEAD_STILL_MIN_MS).optional(), msExpected(HEAD_STILL_MIN_MS)) ??
      read(env, "HEAD_STILL_MS", ms(HEAD_STILL_MIN_MS).optional(), msExpected(HEAD_STILL_MIN_MS)),
    // Per chain only, with several: block numbers differ by chain, and one chain's cut-over block
    // on another chain would mark years of its activations historic (no welcome email), or none.
    effectsFromBlock:
      read(env, v("EFFECTS_FROM_BLOCK"), int(0).optional(), "a block number ≥ 0") ??
      read(
        env,
        "EFFECTS_FROM_BLOCK",
        int(0)
          .refine((block) => suffix === "" || block === 0)
          .optional(),
        suffix === ""
          ? "a block number ≥ 0"
          : "EFFECTS_FROM_BLOCK_<id> for each chain with CHAINS: block numbers differ by chain",
      ),
    suffix,
  };
}

/**
 * Chain ids are stored as integer, in Ponder's tables (ponder.schema.ts) and the sidecar's: one
 * above it (Palm's 11297108109) failed every insert, every round, instead of once at start.
 */
const MAX_CHAIN_ID = 2_147_483_647;
const chainId = int(1).max(MAX_CHAIN_ID);
const CHAIN_ID_TEXT = `a chain id (a whole number from 1 to ${MAX_CHAIN_ID})`;

/** One chain from CHAIN_ID/RPC_URL/…, or several from CHAINS and the `_<id>` variables. */
export function loadChains(env: Env): ChainConfig[] {
  const list = read(
    env,
    "CHAINS",
    z
      .string()
      .transform((v) => v.split(",").map((s) => s.trim()))
      // As written in the _<id> variables' names: 42161, not 0xa4b1 nor 042161.
      .pipe(
        z
          .array(
            z
              .string()
              .regex(/^[1-9]\d{0,9}$/)
              .transform(Number)
              .refine((id) => id <= MAX_CHAIN_ID),
          )
          .min(1),
      )
      .refine((ids) => new Set(ids).size === ids.length)
      .optional(),
    `distinct chain ids up to ${MAX_CHAIN_ID}, comma-separated (e.g. 42161,8453)`,
  );
  if (list === undefined) {
    return [readChain(env, read(env, "CHAIN_ID", chainId, CHAIN_ID_TEXT), "")];
  }
  return list.map((id) => readChain(env, id, `_${id}`));
}

// Read by more than one loader: each stated once.
const ponderPort = (env: Env) => read(env, "PONDER_PORT", int(1).max(65535).default(42069), "a TCP port");
const sidecarPort = (env: Env) => read(env, "SIDECAR_PORT", int(1).max(65535).default(42070), "a TCP port");
/**
 * The query options of SMTP_URL that are the connection's. nodemailer lets a URL's options
 * override those the sidecar passes: `?logger=true` printed every recipient's address on stdout,
 * past the log's redaction; `?pool=true`, `?jsonTransport=true` or `?sendmail=true` changed how
 * (or whether) a welcome is sent; `?socketTimeout=` undid the send's deadline, which the outbox's
 * lease relies on. So any other is refused at start.
 */
const SMTP_URL_OPTIONS = [
  "secure",
  "service",
  "proxy",
  "name",
  "localAddress",
  "authMethod",
  "ignoreTLS",
  "requireTLS",
  "opportunisticTLS",
];
const smtpUrl = (env: Env) => {
  const url = read(
    env,
    "SMTP_URL",
    z
      .url({ protocol: /^smtps?$/ })
      // canParse first: zod runs a refinement after its URL check failed too, and `new URL` would
      // throw a TypeError that prints the URL, password and all.
      .refine((v) => URL.canParse(v) && new URL(v).hostname !== "")
      .optional(),
    "an smtp:// or smtps:// URL with a host",
  );
  const refused =
    url && [...new URL(url).searchParams.keys()].find((k) => !k.startsWith("tls.") && !SMTP_URL_OPTIONS.includes(k));
  if (refused !== undefined) {
    throw new ConfigError(
      "SMTP_URL",
      `no query option but tls.* and ${SMTP_URL_OPTIONS.join(", ")} (got ?${refused.slice(0, 40)}: it would override the sidecar's own mail settings)`,
    );
  }
  return url;
};
const developersTable = (env: Env) =>
  read(
    env,
    "DEVELOPERS_TABLE",
    z
      .string()
      .default("public.developers")
      .transform((v) => parseTableName(v))
      .pipe(z.custom<TableName>((v) => v !== null)),
    "a table name such as public.developers (lowercase letters, digits, _)",
  );

export type DatabaseConfig = { url: string; schema: string };

const VIEWS_SCHEMA_EXPECTED = "a lowercase schema name (≤ 45 chars) other than public and stakesync";
const schemaName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,44}$/)
  .refine((s) => s !== "public" && s !== "stakesync");
const schemaList = z
  .string()
  .transform((v) => v.split(",").map((s) => s.trim()))
  .pipe(z.array(schemaName));

// With its "//": "postgres:user:secret@host/db" parses as a URL with no host, and pg would try
// the local socket with the rest as a database name (and say it, password and all, in its error).
const postgresUrl = z.url({ protocol: /^postgres(ql)?$/ }).regex(/^postgres(ql)?:\/\//i);

/**
 * The query options node-postgres takes from a database URL over what the code passes: the
 * client's and the server's timeouts, keepalives, the protocol's mode. `?query_timeout=300000`
 * undid the bound an email's record relies on (a second welcome went out), `?query_timeout=0`
 * failed every query in a millisecond, and `?statement_timeout=` reached every session, the
 * leader's too. Refused, as `options` that set a server setting (`-c …`, `--…`). Everything else
 * is left as the URL says: where and how to connect (`sslmode`, `sslnegotiation`, `host`, …), and
 * what node-postgres ignores (Neon's `channel_binding`, an ORM's `schema`). Such settings belong
 * to the role, server side (ALTER ROLE … SET), where the sidecar's own SETs still come after them.
 */
const DATABASE_URL_OVERRIDES = [
  "query_timeout",
  "statement_timeout",
  "lock_timeout",
  "idle_in_transaction_session_timeout",
  "connectionTimeoutMillis",
  "keepAlive",
  "keepAliveInitialDelayMillis",
  "binary",
  "replication",
];

/** `variable`'s URL, or a ConfigError naming the first query option that would override the code's (never the URL). */
function refuseOverridingOptions(variable: string, url: string): string {
  let query: URLSearchParams;
  try {
    query = new URL(url).searchParams;
  } catch {
    return url; // refused already by its schema, with its own message
  }
  const refused = [...query.keys()].find(
    (k) =>
      DATABASE_URL_OVERRIDES.includes(k) || (k === "options" && query.getAll(k).some((v) => /(^|\s)(-c|--)/.test(v))),
  );
  if (refused !== undefined) {
    throw new ConfigError(
      variable,
      `a postgresql:// URL whose query sets none of ${DATABASE_URL_OVERRIDES.join(", ")}, nor options with -c (got ?${refused.slice(0, 40)}: it would override the sidecar's own connection bounds; set it on the role instead, ALTER ROLE … SET)`,
    );
  }
  return url;
}

/**
 * DATABASE_URL, or for the sidecar `urlVariable` (SIDECAR_DATABASE_URL) when set: the
 * least-privilege setup gives Ponder and the sidecar a role each (docs/sql/roles.sql).
 */
export function loadDatabase(env: Env, urlVariable = "DATABASE_URL"): DatabaseConfig {
  const own =
    urlVariable === "DATABASE_URL"
      ? undefined
      : read(env, urlVariable, postgresUrl.optional(), "a postgresql:// connection URL");
  return {
    url:
      own === undefined
        ? refuseOverridingOptions(
            "DATABASE_URL",
            read(env, "DATABASE_URL", postgresUrl, "a postgresql:// connection URL"),
          )
        : refuseOverridingOptions(urlVariable, own),
    schema: read(
      env,
      "DATABASE_SCHEMA",
      schemaName.default("stakevault"),
      "a lowercase schema name (≤ 45 chars) other than public and stakesync",
    ),
  };
}

export type IndexerConfig = {
  chains: ChainConfig[];
  database: DatabaseConfig;
  port: number;
  /** PONDER_HOST, passed as Ponder's --hostname; unset: Ponder's default, every interface. */
  host: string | undefined;
  /** PONDER_VIEWS_SCHEMA, passed as Ponder's --views-schema. */
  viewsSchema: string | undefined;
  memory: PonderMemory;
};

const hostName = z.string().regex(/^[A-Za-z0-9.:_-]+$/);
const ponderHost = (env: Env) => read(env, "PONDER_HOST", hostName.optional(), "a hostname or IP address to listen on");

/**
 * Where Ponder answers on its own machine: at PONDER_HOST, which may be a private address and
 * then the only one it listens on; at loopback when it listens on every interface (unset,
 * 0.0.0.0, ::). `npm start` waits for it there, and the sidecar watches it there by default.
 */
export function localPonderUrl(host: string | undefined, port: number): string {
  if (host === undefined || host === "0.0.0.0" || host === "::") return `http://127.0.0.1:${port}`;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export function loadIndexerConfig(env: Env): IndexerConfig {
  return {
    chains: loadChains(env),
    database: loadDatabase(env),
    port: ponderPort(env),
    host: ponderHost(env),
    viewsSchema: read(env, "PONDER_VIEWS_SCHEMA", schemaName.optional(), VIEWS_SCHEMA_EXPECTED),
    memory: loadPonderMemory(env),
  };
}

/**
 * Ponder's memory: its V8 heap, and its row cache. That cache defaults to a fifth of the heap
 * and kept every stake_event row written (2.2 GB at 1M events on Node's default heap); the
 * handlers only insert events and update developer_stake, so a small one costs nothing.
 *
 * The heap's 224 MB keep Ponder under 512 MB of resident memory at 1M events (478–497 MB in
 * three runs): a 256 MB heap peaked at 533–550 MB there on a fast machine, at the cost of more
 * collection (bench/results/m1-heap224*.json, m1-heap256.json, m1-heap192.json, scale-1205c.json:
 * docs/performance.md).
 */
export type PonderMemory = { heapMb: number; cacheBytes: number };

export function loadPonderMemory(env: Env): PonderMemory {
  return {
    heapMb: read(env, "PONDER_MAX_HEAP_MB", int(128).default(224), "a whole number of megabytes ≥ 128"),
    cacheBytes: read(env, "PONDER_CACHE_BYTES", int(0).default(16 * 2 ** 20), "a whole number of bytes"),
  };
}

export type TableName = { schema: string; table: string /** quoted, ready to splice into SQL */; sql: string };

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;

/** "developers" or "app.developers" → quoted identifiers; null when not a plain name. */
export function parseTableName(value: string): TableName | null {
  const parts = value.split(".");
  const [schema, table] = parts.length === 1 ? ["public", parts[0]] : parts;
  if (parts.length > 2 || !schema || !table || !identifier.test(schema) || !identifier.test(table)) return null;
  return { schema, table, sql: `"${schema}"."${table}"` };
}

export type SidecarConfig = {
  chains: ChainConfig[];
  database: DatabaseConfig;
  /** Where the sidecar reads Ponder's tables: the views schema when set, else Ponder's own. */
  ponderSchema: string;
  /**
   * PONDER_REPLICA_SCHEMAS: the schemas of further Ponder instances indexing the same chains
   * (each its own `ponder start`, ideally on its own RPC provider). Each round the sidecar reads
   * one instance; it leaves the one it reads only when that one is not ready or has fallen behind
   * (sidecar/sync/choose-source.ts). Empty: Ponder's outages are the sync's.
   */
  ponderReplicaSchemas: string[];
  ponderUrl: string;
  developersTable: TableName;
  /**
   * SIDECAR_MODE. `shadow`: the whole sync into stakesync's own tables, nothing written to the
   * developers table and nothing sent; `/status` and `stakesync plan` show what `write` would do.
   */
  mode: "write" | "shadow";
  stakeDecimals: number;
  /** MIN_STAKE as given, in token units. */
  minStake: string;
  /** Smallest raw net stake that makes a developer active: max(1, ceil(MIN_STAKE × 10^decimals)). */
  activationThreshold: bigint;
  port: number;
  /** SIDECAR_HOST; unset: every interface, as Ponder does. */
  host: string | undefined;
  smtpUrl: string | undefined;
  mailFrom: string | undefined;
  alertWebhookUrl: string | undefined;
  explorerUrl: string | undefined;
  adminToken: string | undefined;
  maxLagBlocks: number;
  /** Ponder counts as down (alert, /ready 503) once a problem has lasted this long. */
  indexerDownAfterMs: number;
  alertAfterErrors: number;
  /** Developers first refused by the database in the last hour, not yet written, that page `developers_refused`. */
  alertAfterRefused: number;
  retryAttempts: number;
  retryDelayMs: number;
  reconcileIntervalMs: number;
  /** Fallback poll when no commit notification arrives (e.g. during Ponder's backfill). */
  syncPollMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** An alert that lasts is repeated at most this often (by default once per rule per 5 minutes). */
  alertRepeatMs: number;
};

/** ceil(value × 10^decimals) for a non-negative decimal string, exactly. */
export function toRawCeil(value: string, decimals: number): bigint {
  const [whole = "0", fraction = ""] = value.split(".");
  const kept = fraction.slice(0, decimals).padEnd(decimals, "0");
  const raw = BigInt(whole + kept);
  return /[1-9]/.test(fraction.slice(decimals)) ? raw + 1n : raw;
}

const MAIL_FROM_EXPECTED = "a sender address such as noreply@example.com or Stakesync <noreply@example.com>";

export function loadSidecarConfig(env: Env): SidecarConfig {
  const database = loadDatabase(env, "SIDECAR_DATABASE_URL");
  const decimals = read(env, "STAKE_DECIMALS", int(0).max(36).default(6), "a whole number of decimals from 0 to 36");
  const minStake = read(
    env,
    "MIN_STAKE",
    z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .default("0"),
    "a non-negative decimal number of tokens (e.g. 12.5)",
  );
  const threshold = toRawCeil(minStake, decimals);
  const ponder = ponderPort(env);
  const ponderSchema =
    read(env, "PONDER_VIEWS_SCHEMA", schemaName.optional(), VIEWS_SCHEMA_EXPECTED) ?? database.schema;
  const smtp = smtpUrl(env);
  const mailFrom = read(
    env,
    "MAIL_FROM",
    // An address in it (bare, `Name <a@b>`, `"a b"@c`, `a@b (Name)`): a name alone is sent from
    // the null sender, with no From:. Its angle brackets, if any, closed.
    z
      .string()
      .regex(/[^\s<>@]@[^\s<>@.]/)
      .refine((v) => (v.match(/</g) ?? []).length === (v.match(/>/g) ?? []).length)
      .optional(),
    MAIL_FROM_EXPECTED,
  );
  // One without the other would silently send nothing.
  if (smtp && !mailFrom) throw new ConfigError("MAIL_FROM", `${MAIL_FROM_EXPECTED} (SMTP_URL is set)`);
  if (mailFrom && !smtp) throw new ConfigError("SMTP_URL", "an smtp:// or smtps:// URL (MAIL_FROM is set)");
  const chains = loadChains(env);
  const maxLagBlocks = read(env, "MAX_LAG_BLOCKS", int(0).default(100), "a whole number of blocks ≥ 0");
  // The sync stays CONFIRMATIONS behind the head by design: at or under it /ready is never 200
  // and the lag alert never clears (a chain of fast blocks wants hundreds of confirmations).
  for (const chain of chains)
    if (maxLagBlocks <= chain.confirmations)
      throw new ConfigError(
        "MAX_LAG_BLOCKS",
        `more blocks than chain ${chain.id}'s CONFIRMATIONS (${chain.confirmations}), which the sync stays behind the head by design`,
      );
  return {
    chains,
    database,
    ponderSchema,
    ponderReplicaSchemas: read(
      env,
      "PONDER_REPLICA_SCHEMAS",
      schemaList.refine((l) => !l.includes(ponderSchema) && new Set(l).size === l.length).default([]),
      `comma-separated lowercase schema names, none repeated nor ${ponderSchema} (the schema read first)`,
    ),
    // Without a trailing slash: the sidecar appends /health and /metrics, and Ponder's server
    // answers //health with 404 (a false `indexer_down` whose message named a URL that answers).
    ponderUrl: read(
      env,
      "PONDER_URL",
      httpUrl.default(localPonderUrl(ponderHost(env), ponder)).transform((u) => u.replace(/\/+$/, "")),
      "an http(s) URL",
    ),
    developersTable: developersTable(env),
    mode: read(env, "SIDECAR_MODE", z.enum(["write", "shadow"]).default("write"), "write or shadow"),
    stakeDecimals: decimals,
    minStake,
    activationThreshold: threshold > 0n ? threshold : 1n,
    port: sidecarPort(env),
    host: read(env, "SIDECAR_HOST", hostName.optional(), "a hostname or IP address to listen on"),
    smtpUrl: smtp,
    mailFrom,
    alertWebhookUrl: read(env, "ALERT_WEBHOOK_URL", httpUrl.optional(), "an http(s) URL"),
    explorerUrl: read(env, "EXPLORER_URL", httpUrl.optional(), "an http(s) URL"),
    // Any token: a short one is warned of at start (sidecar/main.ts), not refused, since a
    // deployment that chose one would otherwise lose the whole sidecar, not only its admin API.
    adminToken: read(env, "ADMIN_TOKEN", z.string().optional(), "a token"),
    maxLagBlocks,
    indexerDownAfterMs: read(env, "INDEXER_DOWN_AFTER_MS", int(0).default(30_000), "milliseconds ≥ 0"),
    alertAfterErrors: read(env, "ALERT_AFTER_ERRORS", int(1).default(5), "a whole number ≥ 1"),
    alertAfterRefused: read(env, "ALERT_AFTER_REFUSED", int(1).default(10), "a whole number ≥ 1"),
    retryAttempts: read(env, "RETRY_ATTEMPTS", int(0).default(3), "a whole number ≥ 0"),
    // Not 0: the sync's backoff starts from it, and a round failing every time would spin.
    retryDelayMs: read(env, "RETRY_DELAY_MS", ms(10).default(5000), msExpected(10)),
    reconcileIntervalMs: read(env, "RECONCILE_INTERVAL_MS", int(100).default(60_000), "milliseconds ≥ 100"),
    syncPollMs: read(env, "SYNC_POLL_MS", ms(10).default(100), msExpected(10)),
    alertRepeatMs: read(env, "ALERT_REPEAT_MS", int(100).default(300_000), "milliseconds ≥ 100"),
    logLevel: read(
      env,
      "LOG_LEVEL",
      z.enum(["debug", "info", "warn", "error"]).default("info"),
      "debug, info, warn or error",
    ),
  };
}

/** The variables that must come from the real environment in production (`npm start`). */
export function requiredInProduction(env: Env, role: "all" | "indexer" | "sidecar" = "all"): string[] {
  const chainIds = env.CHAINS?.trim() ? env.CHAINS.split(",").map((s) => `_${s.trim()}`) : [""];
  // A sidecar alone may have only its own URL.
  const database = role === "sidecar" && env.SIDECAR_DATABASE_URL?.trim() ? [] : ["DATABASE_URL"];
  const names = [...database, ...(chainIds[0] === "" ? ["CHAIN_ID"] : [])];
  for (const suffix of chainIds) names.push(`RPC_URL${suffix}`, `STAKE_VAULT_ADDRESS${suffix}`);
  return names;
}

// fileURLToPath, not import.meta.dirname: Ponder loads this file through vite-node, which lacks it.
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** The local defaults (.env.local) as a map; the caller decides whether they apply. */
export function readLocalDefaults(file = path.join(repoRoot, ".env.local")): Env {
  return parseEnv(readFileSync(file, "utf8"));
}

/**
 * The environment for a production child process: every key of .env.local that `env` lacks is
 * set to "" (which counts as unset), so Ponder's dotenv cannot fill it with a local default.
 */
export function withoutLocalDefaults(env: Env): Record<string, string> {
  const shielded: Record<string, string> = {};
  for (const key of Object.keys(readLocalDefaults())) shielded[key] = "";
  for (const [key, value] of Object.entries(env)) if (value !== undefined) shielded[key] = value;
  return shielded;
}

/**
 * Runs a loader; on a ConfigError prints one line naming the variable and exits 1
 * (a missing or malformed value stops the process at start).
 */
export function orExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    exitOnConfigError(error.message);
  }
}

/** The one line a configuration error gets, on stderr. */
export function reportConfigError(reason: string) {
  process.stderr.write(`stakesync: configuration error: ${reason}\n`);
}

/** A setting or a setup this process cannot run with, and no retry will change: one line, exit 1. */
export function exitOnConfigError(reason: string): never {
  reportConfigError(reason);
  process.exit(1);
}

/** `npm run dev` and `stakesync demo`: the local stack's ports, data folder and tables. */
export type DevConfig = {
  /** STAKESYNC_DATA_DIR: chain state, PostgreSQL's data, the deployment and caught emails. */
  dataDir: string;
  database: DatabaseConfig;
  chainId: number;
  rpcUrl: string;
  ponderPort: number;
  sidecarPort: number;
  /** The dev mail catcher's port (DEV_SMTP_PORT); unused when SMTP_URL is set. */
  smtpPort: number;
  /** SMTP_URL as given: the developer's own server instead of the catcher. */
  smtpUrl: string | undefined;
  developersTable: TableName;
};

/** Reads the dev stack's settings from .env.local's defaults overlaid with `env`. */
export function loadDevConfig(env: Env): DevConfig {
  return {
    dataDir: path.resolve(repoRoot, read(env, "STAKESYNC_DATA_DIR", z.string().default(".data"), "a folder")),
    database: loadDatabase(env),
    chainId: read(env, "CHAIN_ID", chainId.default(31337), CHAIN_ID_TEXT),
    rpcUrl: read(env, "RPC_URL", httpUrl.default("http://127.0.0.1:8545"), "an http(s) URL"),
    ponderPort: ponderPort(env),
    sidecarPort: sidecarPort(env),
    smtpPort: read(env, "DEV_SMTP_PORT", int(1).max(65535).default(2525), "a TCP port"),
    smtpUrl: smtpUrl(env),
    developersTable: developersTable(env),
  };
}

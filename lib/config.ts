/**
 * Configuration from the environment, parsed once and validated (SPEC.md "Configuration").
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
import { getAddress, isAddress } from "viem";
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
const httpUrl = z.url({ protocol: /^https?$/ });
const wsUrl = z.url({ protocol: /^wss?$/ });
const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }))
  .transform((v) => getAddress(v));
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
};

export const chainName = (id: number) => `chain${id}`;

function readChain(env: Env, id: number, suffix: string): ChainConfig {
  const v = (name: string) => `${name}${suffix}`;
  return {
    id,
    name: chainName(id),
    rpcUrls: read(env, v("RPC_URL"), urlList, "one or more http(s) URLs, comma-separated"),
    wsUrl: read(env, v("WS_URL"), wsUrl.optional(), "a ws(s) URL"),
    stakeVault: read(env, v("STAKE_VAULT_ADDRESS"), address, "the StakeVault contract address (0x + 40 hex digits)"),
    startBlock: read(env, v("START_BLOCK"), int(0).default(0), "a block number ≥ 0"),
    confirmations:
      read(env, v("CONFIRMATIONS"), int(0).optional(), "a whole number of blocks ≥ 0") ??
      read(env, "CONFIRMATIONS", int(0).default(2), "a whole number of blocks ≥ 0"),
    pollingIntervalMs:
      read(env, v("POLLING_INTERVAL_MS"), int(10).optional(), "milliseconds ≥ 10") ??
      read(env, "POLLING_INTERVAL_MS", int(10).default(1000), "milliseconds ≥ 10"),
    getLogsBlockRange: read(env, v("GETLOGS_BLOCK_RANGE"), int(1).optional(), "a whole number of blocks ≥ 1"),
  };
}

/** One chain from CHAIN_ID/RPC_URL/…, or several from CHAINS and the `_<id>` variables. */
export function loadChains(env: Env): ChainConfig[] {
  const list = read(
    env,
    "CHAINS",
    z
      .string()
      .transform((v) => v.split(",").map((s) => Number(s.trim())))
      .pipe(z.array(z.number().int().min(1)).min(1))
      .refine((ids) => new Set(ids).size === ids.length)
      .optional(),
    "distinct chain ids, comma-separated (e.g. 42161,8453)",
  );
  if (list === undefined) {
    return [readChain(env, read(env, "CHAIN_ID", int(1), "a chain id (positive integer)"), "")];
  }
  return list.map((id) => readChain(env, id, `_${id}`));
}

export type DatabaseConfig = { url: string; schema: string };

const schemaName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,44}$/)
  .refine((s) => s !== "public" && s !== "stakesync");

export function loadDatabase(env: Env): DatabaseConfig {
  return {
    url: read(env, "DATABASE_URL", z.url({ protocol: /^postgres(ql)?$/ }), "a postgresql:// connection URL"),
    schema: read(
      env,
      "DATABASE_SCHEMA",
      schemaName.default("stakevault"),
      "a lowercase schema name (≤ 45 chars) other than public and stakesync",
    ),
  };
}

export type IndexerConfig = { chains: ChainConfig[]; database: DatabaseConfig; port: number };

export function loadIndexerConfig(env: Env): IndexerConfig {
  return {
    chains: loadChains(env),
    database: loadDatabase(env),
    port: read(env, "PONDER_PORT", int(1).max(65535).default(42069), "a TCP port"),
  };
}

/** The variables that must come from the real environment in production (`npm start`). */
export function requiredInProduction(env: Env): string[] {
  const chainIds = env.CHAINS?.trim() ? env.CHAINS.split(",").map((s) => `_${s.trim()}`) : [""];
  const names = ["DATABASE_URL", ...(chainIds[0] === "" ? ["CHAIN_ID"] : [])];
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
 * (SPEC.md: a missing or malformed value stops the process at start).
 */
export function orExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`stakesync: configuration error: ${error.message}\n`);
    process.exit(1);
  }
}

/**
 * The dev stack's demo developers and what they can do on the local chain: anvil's default
 * accounts 1–9 under names, so each can stake and unstake by itself (account 0 deploys and owns
 * the vault: it mints, stakes for others and slashes). Used by `npm run dev`'s seed and by
 * `stakesync demo`.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { type Address, getAddress, isAddress, parseUnits } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import type { DevConfig } from "../config";
import { anvilKeys, connect, type Deployment, vault } from "../contracts";

export const DEMO_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"] as const;
const KEYS = anvilKeys(DEMO_NAMES.length);

export type DemoDeveloper = { name: string | undefined; wallet: Address; key: `0x${string}` | undefined };

/** A demo name, or any address (which only the vault's owner can act for: stake for it, slash it). */
export function demoDeveloper(nameOrAddress: string): DemoDeveloper {
  const index = DEMO_NAMES.indexOf(nameOrAddress.toLowerCase() as (typeof DEMO_NAMES)[number]);
  if (index >= 0) {
    const key = KEYS[index] as `0x${string}`;
    return { name: DEMO_NAMES[index], wallet: privateKeyToAddress(key), key };
  }
  if (!isAddress(nameOrAddress, { strict: false })) {
    throw new DemoError(`"${nameOrAddress}" is neither a demo name (${DEMO_NAMES.join(", ")}) nor a 0x address`);
  }
  const wallet = getAddress(nameOrAddress);
  const known = KEYS.findIndex((key) => privateKeyToAddress(key) === wallet);
  return known >= 0 ? demoDeveloper(DEMO_NAMES[known] as string) : { name: undefined, wallet, key: undefined };
}

/** A demo action that cannot be done as asked; the message says what to do instead. */
export class DemoError extends Error {}

/** Token units (6 decimals, as MockUSDC) from a decimal string like "12.5". */
export function demoAmount(text: string | undefined): bigint {
  if (!text || !/^\d+(\.\d{1,6})?$/.test(text) || Number(text) === 0) {
    throw new DemoError(`amount must be a positive number of tokens with at most 6 decimals, like 25 or 12.5`);
  }
  return parseUnits(text, 6);
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * The first of RPC_URL and DATABASE_URL that points away from this machine, if one does: the dev
 * stack and the demo act only on the local chain and database they start.
 */
export function notOnThisMachine(
  config: Pick<DevConfig, "rpcUrl" | "database">,
  env: Record<string, string | undefined> = {},
): "RPC_URL" | "DATABASE_URL" | "SIDECAR_DATABASE_URL" | undefined {
  if (!onThisMachine(config.rpcUrl)) return "RPC_URL";
  if (!onThisMachine(config.database.url)) return "DATABASE_URL";
  // The sidecar's own, which it reads first (lib/config.ts).
  const sidecar = env.SIDECAR_DATABASE_URL?.trim();
  if (sidecar && !onThisMachine(sidecar)) return "SIDECAR_DATABASE_URL";
  return undefined;
}

/** Where the email goes, for the dev stack's banner: the server, never the login in its URL. */
export function mailServer(smtpUrl: string): string {
  const url = new URL(smtpUrl);
  return `${url.protocol}//${url.host}`;
}

/** A URL whose host is this machine's loopback (a host name in any case, and with a final dot). */
function onThisMachine(url: string) {
  try {
    return LOOPBACK.has(new URL(url).hostname.toLowerCase().replace(/\.$/, ""));
  } catch {
    return false;
  }
}

/**
 * The demo signs with anvil's public keys and writes fake developers: only ever on this machine's
 * dev stack. Refuses a non-loopback RPC or database, another chain than the deployment's, and a
 * deployment whose vault has no code (a chain started over without it).
 */
export async function assertLocal(config: DevConfig, deployment?: Deployment) {
  const remote = notOnThisMachine(config);
  if (remote) throw new DemoError(`${remote} is not on this machine: the demo acts only on npm run dev's local stack`);
  if (!deployment) return;
  const { publicClient, chainId } = await connect(config.rpcUrl);
  if (chainId !== deployment.chainId) {
    throw new DemoError(`the chain at RPC_URL is ${chainId}, the deployment's is ${deployment.chainId}`);
  }
  const code = await publicClient.getCode({ address: deployment.stakeVault });
  if (!code || code === "0x") throw new DemoError(`no StakeVault at ${deployment.stakeVault}: start npm run dev first`);
}

export function deploymentFile(config: Pick<DevConfig, "dataDir">) {
  return path.join(config.dataDir, "deployment.json");
}

export function readDeployment(config: Pick<DevConfig, "dataDir">): Deployment {
  const file = deploymentFile(config);
  if (!existsSync(file)) throw new DemoError(`no ${file}: start the dev stack first (npm run dev)`);
  return JSON.parse(readFileSync(file, "utf8")) as Deployment;
}

/** The developer stakes `amount` (minted to it first); for an address without a key, the owner stakes for it. */
export async function demoStake(config: DevConfig, deployment: Deployment, developer: DemoDeveloper, amount: bigint) {
  const actor = vault(await connect(config.rpcUrl, developer.key), deployment);
  await actor.fund(amount);
  return developer.key ? actor.stake(amount) : actor.stakeFor(developer.wallet, amount);
}

export async function demoUnstake(config: DevConfig, deployment: Deployment, developer: DemoDeveloper, amount: bigint) {
  if (!developer.key) {
    throw new DemoError(`only the wallet itself can unstake: use a demo name (${DEMO_NAMES.join(", ")})`);
  }
  return vault(await connect(config.rpcUrl, developer.key), deployment).unstake(amount);
}

/** The vault's owner (anvil's account 0, the deployer) slashes the developer's stake. */
export async function demoSlash(config: DevConfig, deployment: Deployment, developer: DemoDeveloper, amount: bigint) {
  return vault(await connect(config.rpcUrl), deployment).slash(developer.wallet, amount);
}

/** Inserts developers rows as the application would at sign-up; an existing row is left as it is. */
export async function demoRegister(
  config: DevConfig,
  developers: { wallet: Address; email: string | null }[],
): Promise<number> {
  const db = new pg.Client({ connectionString: config.database.url });
  await db.connect();
  try {
    const { rowCount } = await db.query(
      `INSERT INTO ${config.developersTable.sql} (wallet_address, email)
       SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (wallet_address) DO NOTHING`,
      [developers.map((d) => d.wallet), developers.map((d) => d.email)],
    );
    return rowCount ?? 0;
  } finally {
    await db.end();
  }
}

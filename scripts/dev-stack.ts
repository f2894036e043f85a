/**
 * `npm run dev`: the whole stack locally with no configuration.
 *   embedded PostgreSQL (127.0.0.1:54320) and anvil (127.0.0.1:8545, 1 s blocks), both keeping
 *   their state in .data/; MockUSDC + StakeVault deployed once with a few demo developers;
 *   `ponder dev` and the sidecar. Ctrl-C stops every child; the next run resumes.
 */
// First: refuses an unsupported Node.js with one line, before anything else loads.
import "../lib/require-node";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { type Address, parseUnits } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { loadDatabase, loadPonderMemory, orExit, parseTableName, readLocalDefaults, repoRoot } from "../lib/config";
import { connect, type Deployment, deploy, vault } from "../lib/contracts";
import { startAnvil, stopChild } from "../lib/local/anvil";
import { startPostgres } from "../lib/local/postgres";
import { ponderCommand, sidecarCommand } from "../lib/local/process";
import { waitFor } from "../lib/wait";
import { ensureDevelopersTable } from "../sidecar/db/developers-table";
import { createLogger } from "../sidecar/log";

const dataDir = path.join(repoRoot, ".data");
const deploymentFile = path.join(dataDir, "deployment.json");
mkdirSync(dataDir, { recursive: true });

// Local defaults, then anything the developer exported on top.
const env = { ...readLocalDefaults(), ...process.env } as Record<string, string>;
const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);

const database = loadDatabase(env);
const pgPort = Number(new URL(database.url).port);
say(`starting PostgreSQL on 127.0.0.1:${pgPort} (data in .data/postgres)`);
const postgres = await startPostgres({
  dataDir: path.join(dataDir, "postgres"),
  port: pgPort,
  database: new URL(database.url).pathname.slice(1),
});

const rpcPort = Number(new URL(env.RPC_URL ?? "http://127.0.0.1:8545").port);
say(`starting anvil on 127.0.0.1:${rpcPort}, 1 s blocks (state in .data/anvil-state.json)`);
const anvil = await startAnvil({
  port: rpcPort,
  chainId: Number(env.CHAIN_ID ?? 31337),
  blockTime: 1,
  stateFile: path.join(dataDir, "anvil-state.json"),
});

const clients = await connect(anvil.rpcUrl);
const deployment = await deployOnce();
env.STAKE_VAULT_ADDRESS = deployment.stakeVault;
env.START_BLOCK = String(deployment.blockNumber);

const children: ChildProcess[] = [];
function launch(name: string, args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const prefix = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) process.stdout.write(`[${name}] ${line}\n`);
  };
  child.stdout?.on("data", prefix);
  child.stderr?.on("data", prefix);
  child.once("exit", (code, signal) => {
    if (!stopping) say(`${name} exited (${signal ?? code}); Ctrl-C to stop the rest`);
  });
  children.push(child);
}

const sidecar = await sidecarCommand();
const ponderPort = env.PONDER_PORT ?? "42069";
const ponder = ponderCommand(
  orExit(() => loadPonderMemory(env)),
  ["dev", "--disable-ui", "--schema", database.schema, "--port", ponderPort],
);
launch("ponder", ponder.args, ponder.env);
launch("sidecar", sidecar);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  say("stopping…");
  await Promise.all(children.map((child) => stopChild(child, "SIGINT")));
  await anvil.stop(); // SIGINT: anvil writes its state file on the way out
  await postgres.stop();
  say("stopped; `npm run dev` resumes from .data/ (delete it to start over)");
  process.exit(0);
}
// Children first, then anvil (it saves its state on SIGINT), then PostgreSQL.
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

await waitFor("ponder", async () => (await fetch(`http://127.0.0.1:${ponderPort}/ready`)).status === 200, {
  timeoutMs: 300_000,
  intervalMs: 500,
}).catch((error) => say(`ponder is not ready yet: ${error.message}`));
say("ready:");
say(`  GraphQL   http://localhost:${ponderPort}/graphql`);
say(`  SQL       http://localhost:${ponderPort}/sql/*`);
say(`  sidecar   http://localhost:${env.SIDECAR_PORT ?? "42070"}/  (status page)`);
say(
  `  database  ${postgres.url}  (Ponder schema "${database.schema}", table ${env.DEVELOPERS_TABLE ?? "public.developers"})`,
);
say(`  chain     ${anvil.rpcUrl}  StakeVault ${deployment.stakeVault}  MockUSDC ${deployment.token}`);

/** Reuses .data/deployment.json while the chain still has the code; otherwise deploys and seeds. */
async function deployOnce(): Promise<Deployment> {
  if (existsSync(deploymentFile)) {
    const saved = JSON.parse(readFileSync(deploymentFile, "utf8")) as Deployment;
    const code = await clients.publicClient.getCode({ address: saved.stakeVault });
    if (code && code !== "0x") {
      say(`StakeVault ${saved.stakeVault} already deployed at block ${saved.blockNumber}`);
      return saved;
    }
  }
  const fresh = await deploy(clients);
  writeFileSync(deploymentFile, `${JSON.stringify(fresh, null, 2)}\n`);
  say(`deployed MockUSDC ${fresh.token} and StakeVault ${fresh.stakeVault} at block ${fresh.blockNumber}`);
  await seedDemo(fresh);
  return fresh;
}

/** Demo developers are anvil's accounts 1–5, so each can also stake and unstake by itself. */
async function seedDemo(deployment: Deployment) {
  const keys = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
  ] as const;
  const names = ["alice", "bob", "carol", "dave", "erin"];
  const wallets = keys.map((key) => privateKeyToAddress(key));
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  const table = parseTableName(env.DEVELOPERS_TABLE ?? "public.developers");
  if (!table) throw new Error("DEVELOPERS_TABLE must be a table name like public.developers");
  await ensureDevelopersTable(db, table, createLogger("warn"));
  await db.query(
    `INSERT INTO ${table.sql} (wallet_address, email)
     SELECT w, n || '@example.test' FROM unnest($1::text[], $2::text[]) AS t(w, n)
     ON CONFLICT (wallet_address) DO NOTHING`,
    [wallets, names],
  );
  await db.end();

  const owner = vault(clients, deployment);
  await owner.fund(parseUnits("1000", 6));
  await owner.stakeForMany(wallets.slice(0, 3) as Address[], [
    parseUnits("100", 6),
    parseUnits("50", 6),
    parseUnits("12.5", 6),
  ]);
  const dave = vault(await connect(anvil.rpcUrl, keys[3]), deployment);
  await dave.fund(parseUnits("20", 6));
  await dave.stake(parseUnits("20", 6));
  await dave.unstake(parseUnits("5", 6));
  say(`registered ${names.join(", ")}; staked for alice, bob, carol; dave staked and unstaked; erin has no stake`);
}

/**
 * The benchmark's chain: N events over D developers, at most 100 per block, mostly stakes
 * through stakeForMany, ~10% unstakes (sent by the developers themselves), a few slashes.
 * Deterministic from the seed; kept as an anvil state file in bench/.cache/ and reused.
 *
 * Each use loads that file read-only and mines 32 empty blocks on top: every event is then past
 * Ponder's 30-block finality on anvil (so bare Ponder's /ready and the full pipeline cover the
 * same events), and the confirmed block has state to read (a loaded dump has none before it).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Address, encodeFunctionData, getAddress, keccak256, toHex } from "viem";
import { MockUSDCAbi } from "../abis/MockUSDC";
import { StakeVaultAbi } from "../abis/StakeVault";
import { repoRoot } from "../lib/config";
import { connect, type Deployment, deploy } from "../lib/contracts";
import { type Anvil, startAnvil } from "../lib/local/anvil";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";

export type Workload = {
  seed: string;
  events: number;
  developers: Address[];
  deployment: Deployment;
  head: number;
  /** Raw net stake per developer after the last block. */
  truth: Record<string, string>;
  kinds: { staked: number; unstaked: number; slashed: number };
};

const DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/** mulberry32: small, fast, deterministic. */
function rng(seed: string) {
  let a = Number.parseInt(keccak256(toHex(seed)).slice(2, 10), 16);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function developerWallets(count: number, seed: string): Address[] {
  return Array.from({ length: count }, (_, i) => getAddress(keccak256(toHex(`${seed}:dev:${i}`)).slice(0, 42)));
}

type Call = [method: string, params: unknown[]];

async function rpcBatch(url: string, calls: Call[]) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(calls.map(([method, params], id) => ({ jsonrpc: "2.0", id, method, params }))),
  });
  const answers = (await response.json()) as { id: number; error?: { message: string } }[];
  const failed = answers.find((a) => a.error);
  if (failed) throw new Error(`${calls[failed.id]?.[0]}: ${failed.error?.message}`);
  return answers;
}

/** Starts anvil on the cached chain for (seed, events, developers), generating it first if needed. */
export async function workloadChain(
  options: { seed: string; events: number; developers: number },
  log: (line: string) => void,
): Promise<{ anvil: Anvil; workload: Workload }> {
  const key = `${options.seed}-${options.events}-${options.developers}`;
  const dir = path.join(repoRoot, "bench", ".cache");
  mkdirSync(dir, { recursive: true });
  const stateFile = path.join(dir, `chain-${key}.json`);
  const metaFile = path.join(dir, `chain-${key}.meta.json`);
  const port = await freePort();
  const load = async () => {
    const anvil = await startAnvil({ port, loadStateFile: stateFile });
    const workload = JSON.parse(readFileSync(metaFile, "utf8")) as Workload;
    const { publicClient } = await connect(anvil.rpcUrl);
    if (Number(await publicClient.getBlockNumber({ cacheTime: 0 })) !== workload.head) {
      await anvil.stop();
      return undefined;
    }
    await rpcBatch(anvil.rpcUrl, [["anvil_mine", [toHex(32)]]]);
    await waitFor(
      "32 blocks on top of the workload",
      async () => Number(await publicClient.getBlockNumber({ cacheTime: 0 })) >= workload.head + 32,
    );
    return { anvil, workload };
  };
  if (existsSync(stateFile) && existsSync(metaFile)) {
    const loaded = await load();
    if (loaded) return loaded;
    log(`cached chain ${key} is stale; generating again`);
  }

  const started = Date.now();
  const anvil = await startAnvil({ port, stateFile: `${stateFile}.tmp` });
  // Developers unstake themselves: impersonated, so the benchmark needs none of their keys.
  await rpcBatch(anvil.rpcUrl, [["anvil_autoImpersonateAccount", [true]]]);
  const clients = await connect(anvil.rpcUrl);
  const deployment = await deploy(clients);
  const developers = developerWallets(options.developers, options.seed);
  const random = rng(options.seed);
  const stake = new Map<string, bigint>(); // settled (mined) stake per developer
  const nonces = new Map<string, number>();
  let deployerNonce = await clients.publicClient.getTransactionCount({ address: DEPLOYER, blockTag: "pending" });
  const funded = new Set<string>();
  const kinds = { staked: 0, unstaked: 0, slashed: 0 };
  const tx = (from: string, to: Address, data: `0x${string}`, nonce: number): Call => [
    "eth_sendTransaction",
    [{ from, to, data, nonce: toHex(nonce), gas: toHex(8_000_000) }],
  ];

  await rpcBatch(anvil.rpcUrl, [
    ["evm_setAutomine", [false]],
    tx(
      DEPLOYER,
      deployment.token,
      encodeFunctionData({ abi: MockUSDCAbi, functionName: "mint", args: [DEPLOYER, 10n ** 40n] }),
      deployerNonce++,
    ),
    tx(
      DEPLOYER,
      deployment.token,
      encodeFunctionData({ abi: MockUSDCAbi, functionName: "approve", args: [deployment.stakeVault, 10n ** 40n] }),
      deployerNonce++,
    ),
    ["evm_mine", []],
  ]);

  let emitted = 0;
  let blocks = 0;
  while (emitted < options.events) {
    const room = Math.min(100, options.events - emitted);
    const staked = [...stake.entries()].length > 0;
    const unstakes = staked ? Math.min(room - 1, Math.floor(random() * 21)) : 0; // ~10% on average
    const slashes = staked && random() < 0.2 && room - unstakes > 1 ? 1 : 0;
    const stakes = room - unstakes - slashes;
    const calls: Call[] = [];
    const pending = new Map<string, bigint>();

    const batch = Array.from({ length: stakes }, () => developers[Math.floor(random() * developers.length)] as Address);
    const amounts = batch.map(() => BigInt(1 + Math.floor(random() * 1000)) * 1_000_000n);
    calls.push(
      tx(
        DEPLOYER,
        deployment.stakeVault,
        encodeFunctionData({ abi: StakeVaultAbi, functionName: "stakeForMany", args: [batch, amounts] }),
        deployerNonce++,
      ),
    );
    for (const [i, d] of batch.entries()) pending.set(d, (pending.get(d) ?? 0n) + (amounts[i] as bigint));

    const holders = [...stake.keys()];
    const touched = new Set<string>();
    for (let i = 0; i < unstakes + slashes; i++) {
      const who = holders[Math.floor(random() * holders.length)] as Address;
      if (touched.has(who)) continue; // one change per holder per block keeps the bookkeeping exact
      touched.add(who);
      const held = stake.get(who) ?? 0n;
      const amount = held / BigInt(2 + Math.floor(random() * 3)) || held;
      if (amount === 0n) continue;
      stake.set(who, held - amount);
      if (i < unstakes) {
        if (!funded.has(who)) {
          calls.unshift(["anvil_setBalance", [who, toHex(10n ** 20n)]]);
          funded.add(who);
        }
        const n = nonces.get(who) ?? 0;
        nonces.set(who, n + 1);
        calls.push(
          tx(
            who,
            deployment.stakeVault,
            encodeFunctionData({ abi: StakeVaultAbi, functionName: "unstake", args: [amount] }),
            n,
          ),
        );
        kinds.unstaked++;
      } else {
        calls.push(
          tx(
            DEPLOYER,
            deployment.stakeVault,
            encodeFunctionData({ abi: StakeVaultAbi, functionName: "slash", args: [who, amount] }),
            deployerNonce++,
          ),
        );
        kinds.slashed++;
      }
    }
    calls.push(["evm_mine", []]);
    await rpcBatch(anvil.rpcUrl, calls);
    for (const [d, amount] of pending) stake.set(d, (stake.get(d) ?? 0n) + amount);
    kinds.staked += stakes;
    emitted += stakes + (calls.filter((c) => c[0] === "eth_sendTransaction").length - 1);
    blocks++;
    if (blocks % 200 === 0) log(`  generated ${emitted} events in ${blocks} blocks`);
  }
  // Two empty blocks so that every event has the default CONFIRMATIONS behind it.
  await rpcBatch(anvil.rpcUrl, [
    ["evm_mine", []],
    ["evm_mine", []],
    ["evm_setAutomine", [true]],
  ]);
  const head = Number(await clients.publicClient.getBlockNumber({ cacheTime: 0 }));
  const workload: Workload = {
    seed: options.seed,
    events: emitted,
    developers,
    deployment,
    head,
    truth: Object.fromEntries([...stake].map(([d, a]) => [d.toLowerCase(), a.toString()])),
    kinds,
  };
  await anvil.stop(); // writes the state file
  const { renameSync } = await import("node:fs");
  renameSync(`${stateFile}.tmp`, stateFile);
  writeFileSync(metaFile, JSON.stringify(workload));
  log(`generated ${emitted} events in ${blocks} blocks in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const loaded = await load();
  if (!loaded) throw new Error(`the chain just generated in ${stateFile} did not load back`);
  return loaded;
}

/** stakeOf() for every developer at the head, against the generator's bookkeeping. */
export async function verifyTruth(anvil: Anvil, workload: Workload) {
  const clients = await connect(anvil.rpcUrl);
  let wrong = 0;
  for (let i = 0; i < workload.developers.length; i += 500) {
    const slice = workload.developers.slice(i, i + 500);
    const amounts = await Promise.all(
      slice.map((d) =>
        clients.publicClient.readContract({
          address: workload.deployment.stakeVault,
          abi: StakeVaultAbi,
          functionName: "stakeOf",
          args: [d],
        }),
      ),
    );
    slice.forEach((d, j) => {
      if ((amounts[j] ?? 0n).toString() !== (workload.truth[d.toLowerCase()] ?? "0")) wrong++;
    });
  }
  if (wrong > 0) throw new Error(`${wrong} developers' stakeOf() differ from the generated ground truth`);
}

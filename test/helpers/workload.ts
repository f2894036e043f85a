/** Deterministic stake activity on a test chain: every kind of event, several callers. */
import { type Address, getAddress, keccak256, toHex } from "viem";
import { StakeVaultAbi } from "../../abis/StakeVault";
import { anvilKeys, connect, vault } from "../../lib/contracts";
import { waitFor } from "../../lib/wait";
import type { TestChain } from "./stack";

export { anvilKeys } from "../../lib/contracts";

/** `n` addresses derived from a seed, lowercase. */
export function wallets(n: number, seed = "dev"): Address[] {
  return Array.from(
    { length: n },
    (_, i) => getAddress(keccak256(toHex(`${seed}-${i}`)).slice(0, 42)).toLowerCase() as Address,
  );
}

/**
 * Stakes through stakeForMany and stakeFor for `developers`, slashes some of them, and lets
 * two self-staking accounts stake and unstake. Returns every developer touched.
 */
export async function mixedActivity(chain: TestChain, developers: Address[]): Promise<Address[]> {
  await chain.vault.fund(10n ** 18n);
  const amounts = developers.map((_, i) => BigInt(1_000_000 * (i + 1)));
  for (let i = 0; i < developers.length; i += 10) {
    await chain.vault.stakeForMany(developers.slice(i, i + 10), amounts.slice(i, i + 10));
  }
  for (const [i, developer] of developers.entries()) {
    if (i % 3 === 0) await chain.vault.stakeFor(developer, 250_000n);
    if (i % 4 === 0) await chain.vault.slash(developer, 100_000n);
  }
  const selfStakers: Address[] = [];
  for (const key of anvilKeys(2)) {
    const clients = await connect(chain.rpcUrl, key);
    const own = vault(clients, chain.deployment);
    await own.fund(10_000_000n);
    await own.stake(3_000_000n);
    await own.unstake(1_000_000n);
    await own.stake(500_000n);
    selfStakers.push(clients.wallet.account.address.toLowerCase() as Address);
  }
  return [...developers, ...selfStakers];
}

/** Number of StakeVault logs on the chain so far, paged to stay under viem's 10 MB answer cap. */
export async function vaultLogCount(chain: TestChain): Promise<number> {
  const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
  let count = 0;
  for (let from = BigInt(chain.deployment.blockNumber); from <= head; from += 50n) {
    const to = from + 49n < head ? from + 49n : head;
    count += (await chain.publicClient.getLogs({ address: chain.deployment.stakeVault, fromBlock: from, toBlock: to }))
      .length;
  }
  return count;
}

export async function mine(chain: TestChain, blocks: number) {
  await chain.publicClient.request({ method: "anvil_mine" as never, params: [toHex(blocks)] as never });
}

/**
 * Mines a block at a time until `check` holds. A removal is applied once Ponder commits a block
 * after the sync first saw it missing, and a test chain only moves when told.
 */
export async function mineUntil(chain: TestChain, what: string, check: () => Promise<boolean> | boolean) {
  await waitFor(
    what,
    async () => {
      await mine(chain, 1);
      return check();
    },
    { intervalMs: 500, timeoutMs: 60_000 },
  );
}

/**
 * `rounds` stakeForMany transactions of up to 100 developers each: a large, fast backfill, about
 * one transaction a block (anvil mines each as it comes; two sent close together may share one).
 * Sent back to back with their nonce, gas and fees given and every receipt checked at the end:
 * through `chain.vault`, viem read the nonce and fees, estimated the gas and polled for the
 * receipt of each, 52 ms a transaction (10.5 s for 20,000 events; 1.8 s now).
 */
export async function bulkStakes(chain: TestChain, developers: Address[], rounds: number) {
  await chain.vault.fund(10n ** 24n);
  const { wallet, publicClient } = chain;
  const amounts = (round: number, i: number, batch: Address[]) =>
    batch.map((_, j) => BigInt(1 + ((round * 7919 + i + j) % 1000)) * 10_000n);
  const call = { address: chain.deployment.stakeVault, abi: StakeVaultAbi, functionName: "stakeForMany" } as const;
  const first = developers.slice(0, 100);
  // The first batch writes fresh storage, the dearest; every batch gets its gas and a margin.
  const gas =
    ((await publicClient.estimateContractGas({
      ...call,
      args: [first, amounts(0, 0, first)],
      account: wallet.account,
    })) *
      3n) /
    2n;
  const { baseFeePerGas } = await publicClient.getBlock();
  const maxPriorityFeePerGas = 1_000_000_000n;
  // Blocks under half full (a batch takes about 2.5 M of 30 M gas) lower the base fee: twice
  // today's covers every later block.
  const maxFeePerGas = (baseFeePerGas ?? 1_000_000_000n) * 2n + maxPriorityFeePerGas;
  let nonce = await publicClient.getTransactionCount({ address: wallet.account.address, blockTag: "pending" });
  const hashes: `0x${string}`[] = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < developers.length; i += 100) {
      const batch = developers.slice(i, i + 100);
      hashes.push(
        await wallet.writeContract({
          ...call,
          args: [batch, amounts(round, i, batch)],
          nonce: nonce++,
          gas,
          maxFeePerGas,
          maxPriorityFeePerGas,
        }),
      );
    }
  }
  const receipts = await Promise.all(hashes.map((hash) => publicClient.waitForTransactionReceipt({ hash })));
  const failed = receipts.filter((r) => r.status !== "success");
  if (failed.length > 0) throw new Error(`${failed.length} stakeForMany transactions reverted`);
}

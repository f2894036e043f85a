/**
 * Deploys and drives MockUSDC + StakeVault from the committed artifacts (artifacts/*.json).
 * Used by `npm run deploy`, `npm run dev`, the tests and the benchmark.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  getAddress,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  toHex,
  type WalletClient,
} from "viem";
import { mnemonicToAccount, privateKeyToAccount } from "viem/accounts";
import { MockUSDCAbi } from "../abis/MockUSDC";
import { StakeVaultAbi } from "../abis/StakeVault";
import { repoRoot } from "./config";

/** anvil's first default account; it owns the vault in local setups. */
export const ANVIL_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" as const;

/** anvil's public development mnemonic: its default accounts, for local chains only. */
const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";

/** Private keys of anvil's default accounts 1..n (account 0 is the deployer). */
export function anvilKeys(n: number): Hex[] {
  return Array.from({ length: n }, (_, i) =>
    toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i + 1 }).getHdKey().privateKey as Uint8Array),
  );
}

export type Deployment = { chainId: number; stakeVault: Address; token: Address; blockNumber: number };

function bytecode(name: "MockUSDC" | "StakeVault"): Hex {
  const artifact = JSON.parse(readFileSync(path.join(repoRoot, "artifacts", `${name}.json`), "utf8"));
  return artifact.bytecode as Hex;
}

export type Clients = {
  publicClient: PublicClient<Transport, Chain>;
  wallet: WalletClient<Transport, Chain, Account>;
  chainId: number;
};

export async function connect(rpcUrl: string, privateKey: Hex = ANVIL_DEPLOYER_KEY): Promise<Clients> {
  const probe = createPublicClient({ transport: http(rpcUrl) });
  const chainId = await probe.getChainId();
  const chain = {
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  } as const satisfies Chain;
  const transport = http(rpcUrl);
  return {
    chainId,
    publicClient: createPublicClient({ chain, transport }),
    // No nonce manager: it would remember nonces that an evm_revert took back.
    wallet: createWalletClient({ chain, transport, account: privateKeyToAccount(privateKey) }),
  };
}

async function confirm(clients: Clients, hash: Hex) {
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
  return receipt;
}

export async function deploy(clients: Clients): Promise<Deployment> {
  const { wallet } = clients;
  const tokenTx = await wallet.deployContract({ abi: MockUSDCAbi, bytecode: bytecode("MockUSDC") });
  const token = getAddress((await confirm(clients, tokenTx)).contractAddress as Address);
  const vaultTx = await wallet.deployContract({
    abi: StakeVaultAbi,
    bytecode: bytecode("StakeVault"),
    args: [token],
  });
  const receipt = await confirm(clients, vaultTx);
  return {
    chainId: clients.chainId,
    stakeVault: getAddress(receipt.contractAddress as Address),
    token,
    blockNumber: Number(receipt.blockNumber),
  };
}

/** Acts on a deployed vault as the connected account; each call waits for its receipt. */
export function vault(clients: Clients, deployment: Deployment) {
  const { wallet } = clients;
  const send = async (hash: Promise<Hex>) => confirm(clients, await hash);
  const v = { address: deployment.stakeVault, abi: StakeVaultAbi } as const;
  const t = { address: deployment.token, abi: MockUSDCAbi } as const;
  return {
    /** Mints `amount` to the caller and lets the vault take it. */
    fund: async (amount: bigint) => {
      await send(wallet.writeContract({ ...t, functionName: "mint", args: [wallet.account.address, amount] }));
      return send(wallet.writeContract({ ...t, functionName: "approve", args: [deployment.stakeVault, amount] }));
    },
    stake: (amount: bigint) => send(wallet.writeContract({ ...v, functionName: "stake", args: [amount] })),
    stakeFor: (developer: Address, amount: bigint) =>
      send(wallet.writeContract({ ...v, functionName: "stakeFor", args: [developer, amount] })),
    stakeForMany: (developers: Address[], amounts: bigint[]) =>
      send(wallet.writeContract({ ...v, functionName: "stakeForMany", args: [developers, amounts] })),
    unstake: (amount: bigint) => send(wallet.writeContract({ ...v, functionName: "unstake", args: [amount] })),
    slash: (developer: Address, amount: bigint) =>
      send(wallet.writeContract({ ...v, functionName: "slash", args: [developer, amount] })),
    stakeOf: (developer: Address, blockNumber?: bigint) =>
      clients.publicClient.readContract({ ...v, functionName: "stakeOf", args: [developer], blockNumber }),
  };
}

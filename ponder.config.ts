import { createConfig } from "ponder";
import { fallback, http } from "viem";
import { StakeVaultAbi } from "./abis/StakeVault";
import { type ChainConfig, loadIndexerConfig, orExit } from "./lib/config";

const config = orExit(() => loadIndexerConfig(process.env));

/**
 * One URL: Ponder's own HTTP client, listed RPC_LANES times (each entry is a lane of Ponder's
 * rate balancer). Several: viem's fallback transport, so the later URLs are used only when the
 * earlier fail (a string list would be load-balanced instead). viem's http() refuses answers
 * over 10 MB, so a transport needs a bounded getLogs range.
 */
function rpc(chain: ChainConfig) {
  const [url] = chain.rpcUrls as [string];
  if (chain.rpcUrls.length === 1) return { rpc: chain.rpcLanes === 1 ? url : Array(chain.rpcLanes).fill(url) };
  return {
    rpc: fallback(chain.rpcUrls.map((url) => http(url))),
    ethGetLogsBlockRange: chain.getLogsBlockRange ?? 500,
  };
}

export default createConfig({
  database: { kind: "postgres", connectionString: config.database.url },
  ordering: "multichain",
  chains: Object.fromEntries(
    config.chains.map((chain) => [
      chain.name,
      {
        id: chain.id,
        ws: chain.wsUrl,
        pollingInterval: chain.pollingIntervalMs,
        ethGetLogsBlockRange: chain.getLogsBlockRange,
        ...rpc(chain),
      },
    ]),
  ),
  contracts: {
    StakeVault: {
      abi: StakeVaultAbi,
      chain: Object.fromEntries(
        config.chains.map((chain) => [chain.name, { address: chain.stakeVault, startBlock: chain.startBlock }]),
      ),
    },
  },
});

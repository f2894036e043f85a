/** Polls each chain's head block over its RPC URLs (fallbacks in order), for lag and readiness. */
import type { Logger } from "pino";
import { createPublicClient, fallback, http } from "viem";
import type { ChainConfig } from "../lib/config";

export type Head = { block: number; at: number } | undefined;

export function watchHeads(chains: ChainConfig[], log: Logger, onError: (chainId: number) => void, intervalMs = 2000) {
  const heads = new Map<number, Head>();
  const clients = chains.map((chain) => ({
    chain,
    client: createPublicClient({
      transport: fallback(chain.rpcUrls.map((url) => http(url, { timeout: 5000, retryCount: 0 }))),
    }),
  }));
  const poll = async () => {
    await Promise.all(
      clients.map(async ({ chain, client }) => {
        try {
          heads.set(chain.id, { block: Number(await client.getBlockNumber({ cacheTime: 0 })), at: Date.now() });
        } catch (error) {
          onError(chain.id);
          log.warn({ chain_id: chain.id, err: (error as Error).message.split("\n")[0] }, "RPC head request failed");
        }
      }),
    );
  };
  const timer = setInterval(poll, intervalMs);
  return { heads, ready: poll(), stop: () => clearInterval(timer) };
}

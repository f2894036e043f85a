/** Polls each chain's head block over its RPC URLs (fallbacks in order), for lag and readiness. */
import type { Logger } from "pino";
import type { ChainConfig } from "../lib/config";
import { callRpc, quantity } from "./json-rpc";

export type Head = { block: number; at: number } | undefined;

/**
 * A head polled longer ago than this is not known: every RPC URL has failed since. The lag shown
 * and /ready take it as unknown (an outage of the provider Ponder shares would otherwise leave
 * the last lag showing, and /ready 200, while nothing moves), and `rpc_failing` pages on it.
 */
export const HEAD_STALE_MS = 10_000;

/** The head's block, if polled within HEAD_STALE_MS. */
export const freshBlock = (head: Head, now = Date.now()) =>
  head && now - head.at <= HEAD_STALE_MS ? head.block : null;

const blockNumber = (urls: string[]) => callRpc(urls, "eth_blockNumber", [], (result) => Number(quantity(result)));

export function watchHeads(chains: ChainConfig[], log: Logger, onError: (chainId: number) => void, intervalMs = 2000) {
  const heads = new Map<number, Head>();
  const poll = async () => {
    await Promise.all(
      chains.map(async (chain) => {
        try {
          heads.set(chain.id, { block: await blockNumber(chain.rpcUrls), at: Date.now() });
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

/**
 * Polls each chain's head block over its RPC URLs (fallbacks in order), for lag and readiness.
 * Plain JSON-RPC over fetch: eth_blockNumber is all the sidecar asks of a node, and viem would
 * add ~55 MB to its memory.
 */
import type { Logger } from "pino";
import type { ChainConfig } from "../lib/config";

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

async function blockNumber(urls: string[]): Promise<number> {
  let lastError: unknown;
  for (const url of urls) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
        signal: AbortSignal.timeout(5000),
      });
      const body = (await response.json()) as { result?: string; error?: { message: string } };
      if (typeof body.result === "string") return Number(BigInt(body.result));
      throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

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

/** Polls each chain's head block over its RPC URLs (fallbacks in order), for lag and readiness. */
import type { Logger } from "pino";
import type { ChainConfig } from "../lib/config";
import { callRpc, quantity } from "./json-rpc";

/**
 * The head's block, when it was polled, and since when no poll has gone past the highest block
 * polled within HEAD_STILL_MS before the last poll that answered (`movedAt`): a provider behind a balancer with nodes
 * stuck at two heights alternates between them, and moves no further; one answer far off (a
 * member on another network) leaves that window, instead of holding the head still for good.
 */
export type Head = { block: number; at: number; movedAt?: number } | undefined;

/**
 * A head polled longer ago than this is not known: every RPC URL has failed since. The lag shown
 * and /ready take it as unknown (an outage of the provider Ponder shares would otherwise leave
 * the last lag showing, and /ready 200, while nothing moves), and `rpc_failing` pages on it.
 */
export const HEAD_STALE_MS = 10_000;

/**
 * The head's block, if polled within HEAD_STALE_MS and, with `stillMs` (HEAD_STILL_MS), if it
 * has moved within that: a node that answers but stopped following the chain (it fell out of
 * sync) serves its last block for as long as it is stuck, and Ponder, on the same provider, sees
 * nothing new either. Unknown then, as when every URL fails.
 */
export const freshBlock = (head: Head, now = Date.now(), stillMs?: number) =>
  head && now - head.at <= HEAD_STALE_MS && !stillFor(head, now, stillMs) ? head.block : null;

/** How long the head has stood still past `stillMs`, in ms; 0 when it has not (or no limit). */
export const stillFor = (head: Head, now: number, stillMs: number | undefined) =>
  head?.movedAt !== undefined && stillMs !== undefined && now - head.movedAt > stillMs ? now - head.movedAt : 0;

const blockNumber = (urls: string[]) => callRpc(urls, "eth_blockNumber", [], (result) => Number(quantity(result)));

export function watchHeads(chains: ChainConfig[], log: Logger, onError: (chainId: number) => void, intervalMs = 2000) {
  const heads = new Map<number, Head>();
  /** Per chain, the blocks polled within its HEAD_STILL_MS. */
  const recent = new Map<number, { block: number; at: number }[]>();
  /**
   * The chains whose poll is under way. A tick skips such a chain: a poll whose primary timed out
   * (5 s) and that a fallback behind answered ended after a later poll's answer, and its older
   * block went back over the head (and into the still-window as a block not gone past).
   */
  const polling = new Set<number>();
  const pollChain = async (chain: ChainConfig) => {
    if (polling.has(chain.id)) return;
    polling.add(chain.id);
    try {
      const block = await blockNumber(chain.rpcUrls);
      const now = Date.now();
      const last = heads.get(chain.id);
      // The window ends at the last poll that answered, not now: after an outage longer than
      // HEAD_STILL_MS (or polls further apart than it) an empty window made a stuck head move.
      const end = last?.at ?? now;
      const window = (recent.get(chain.id) ?? []).filter((s) => end - s.at <= (chain.headStillMs ?? 0));
      const moved = last?.movedAt === undefined || window.every((s) => block > s.block);
      recent.set(chain.id, [...window, { block, at: now }]);
      heads.set(chain.id, { block, at: now, movedAt: moved ? now : last.movedAt });
    } catch (error) {
      onError(chain.id);
      log.warn({ chain_id: chain.id, err: (error as Error).message.split("\n")[0] }, "RPC head request failed");
    } finally {
      polling.delete(chain.id);
    }
  };
  const poll = async () => {
    await Promise.all(chains.map(pollChain));
  };
  const timer = setInterval(poll, intervalMs);
  return { heads, ready: poll(), stop: () => clearInterval(timer) };
}

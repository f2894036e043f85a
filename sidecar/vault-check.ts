/**
 * Each chain's vault, checked once at start against the chain: its RPC answers the chain it is
 * configured for, its token has STAKE_DECIMALS decimals, and the vault held no stake before
 * START_BLOCK.
 *
 * Why: Ponder indexes the vault's events from START_BLOCK on. A stake made before it is missing
 * from every sum, and every developers row would be short of it, with nothing to say so but
 * `stakesync verify`. `totalStaked()` at START_BLOCK − 1 is the sum of every stake at that block:
 * 0 means each developer's stake was 0 then, so the events before START_BLOCK change no sum (a
 * vault deployed at or after START_BLOCK has no code at that block, and the call answers "0x").
 * An RPC URL of another chain would have Ponder index that chain (Ponder only warns).
 *
 * Every URL is asked its chain id at start; the rest is asked of each URL in turn, all of it on
 * one URL (a fallback behind another is not mixed in).
 * Whatever a provider may say because it is behind is no verdict: its head below START_BLOCK, no
 * code at the address (a wrong address, or a node not yet at the deployment) is said, not
 * refused. A provider that cannot answer (down, slow, or a node that keeps no state that old)
 * leaves the check undone, with a warning: the sync waits for it 2 s at most (main.ts).
 */
import { formatUnits } from "viem";
import type { ChainConfig, SidecarConfig } from "../lib/config";
import { callRpc, quantity, RpcAnswerError, reverted } from "./json-rpc";

/** `totalStaked()`'s selector (test/vault-check.test.ts checks it against the ABI). */
export const TOTAL_STAKED_SELECTOR = "0x817b1cd2";
/** The vault's `token()`, and the ERC-20 `decimals()` (checked against the ABIs in the same test). */
export const TOKEN_SELECTOR = "0xfc0c546a";
export const DECIMALS_SELECTOR = "0x313ce567";

export type VaultCheck = {
  chainId: number;
  /**
   * The chain's URLs that did not answer eth_chainId, by position ("RPC_URL, URL 2 of 2: fetch
   * failed"): not wrong (a URL may be down for a while), but not known to be of this chain either.
   */
  unanswered?: string[];
} & (
  | { outcome: "ok" }
  /** The configuration is wrong: the sidecar refuses to start. */
  | { outcome: "wrong"; reason: string }
  /** The provider did not say, or said what a provider behind might: the sidecar starts, and warns. */
  | { outcome: "unchecked"; reason: string }
);

const data = (result: unknown) => {
  if (typeof result !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(result)) {
    throw new Error(`expected hex data, got ${JSON.stringify(result)?.slice(0, 80)}`);
  }
  return result;
};

/** An error's first line; a node's own error answer with its HTTP status and JSON-RPC code. */
const said = (error: unknown) => {
  const line = (error as Error).message.split("\n")[0] ?? "";
  return error instanceof RpcAnswerError ? `${line} (HTTP ${error.status}, code ${String(error.code)})` : line;
};

/**
 * Every URL of the chain is asked its chain id, side by side; then the first URL of the chain's
 * that can give a verdict gives it (a URL that fails, or may be behind, gives way to the next).
 *
 * Every URL, not only the first that answers: Ponder's viem fallback and the sidecar's head poll
 * go to a fallback whenever the URLs before it fail, and one of another chain (a sepolia URL
 * among mainnet ones) would have them read that chain then. A URL is named by its variable and
 * position, never by itself: RPC URLs carry API keys.
 */
export async function checkVault(chain: ChainConfig, decimals: number, timeoutMs = 5000): Promise<VaultCheck> {
  const { id, rpcUrls: urls, suffix } = chain;
  const named = (i: number) => `RPC_URL${suffix}, URL ${i + 1} of ${urls.length}`;
  const ids = await Promise.allSettled(urls.map((url) => callRpc([url], "eth_chainId", [], quantity, timeoutMs)));
  const unanswered = ids.flatMap((r, i) => (r.status === "rejected" ? [`${named(i)}: ${said(r.reason)}`] : []));
  const others = ids.flatMap((r, i) =>
    r.status === "fulfilled" && r.value !== BigInt(id) ? [{ i, other: r.value }] : [],
  );
  const chainId = unanswered.length > 0 ? { chainId: id, unanswered } : { chainId: id };
  if (others.length > 0) {
    return {
      ...chainId,
      outcome: "wrong",
      reason: `${others.map(({ i, other }) => `${named(i)} answers chain ${other}`).join("; ")}, not ${id}: Ponder and the sidecar would read another chain from it`,
    };
  }
  let undone = unanswered.length > 0 ? `no URL answered eth_chainId (${unanswered.join("; ")})` : "";
  for (const [i, url] of urls.entries()) {
    if (ids[i]?.status !== "fulfilled") continue;
    const verdict = await checkAt(url, chain, decimals, timeoutMs).catch(
      (error: unknown): Verdict => ({ outcome: "unchecked", reason: said(error) }),
    );
    if (verdict.outcome !== "unchecked") return { ...chainId, ...verdict };
    undone = verdict.reason;
  }
  return { ...chainId, outcome: "unchecked", reason: undone };
}

type Verdict = { outcome: "ok" } | { outcome: "wrong" | "unchecked"; reason: string };

/** The verdict of one URL, known to answer the chain's id. */
async function checkAt(url: string, chain: ChainConfig, decimals: number, timeoutMs: number): Promise<Verdict> {
  const { id, stakeVault: vault, suffix, startBlock } = chain;
  const ask = <T>(method: string, params: unknown[], parse: (result: unknown) => T) =>
    callRpc([url], method, params, parse, timeoutMs);
  const head = Number(await ask("eth_blockNumber", [], quantity));
  if (head < startBlock) {
    return {
      outcome: "unchecked",
      reason: `the provider's head, block ${head}, is below START_BLOCK${suffix} (${startBlock})`,
    };
  }
  const code = await ask("eth_getCode", [vault, `0x${head.toString(16)}`], data);
  if (code === "0x") {
    return {
      outcome: "unchecked",
      reason: `no contract at STAKE_VAULT_ADDRESS${suffix} ${vault} at block ${head}, the provider's head: a wrong address (Ponder indexes nothing there), or a provider not yet at the vault's deployment`,
    };
  }
  // STAKE_DECIMALS against the token's own: wrong, every stake_amount is off by a power of ten,
  // MIN_STAKE with it (18 read as 6: dust activates, and a welcome email cannot be taken back),
  // and verify, which converts with the same number, says OK. A vault or token that does not
  // answer these (another design) is not judged here.
  // Asked at the head the code was read at, not at "latest": a balancer's member behind it may
  // be before the vault's deployment there, and answer "0x" (no code), read as "no token()"; at a
  // block it lacks, it says so ("header not found"), and the check is undone, with a warning.
  const at = `0x${head.toString(16)}`;
  // Only the node saying the call reverted (a vault or token without these) skips the check. Any
  // other answer (a rate limit's 429 with a JSON-RPC error, "header not found" from a member
  // behind) leaves the whole check undone: taken for a revert, the decimals went unchecked and
  // the verdict was "ok".
  const absent = (what: string) => (error: unknown) => {
    if (reverted(error)) return "0x";
    throw new Error(`${what} unanswered, so STAKE_DECIMALS unchecked: ${said(error)}`);
  };
  const token = await ask("eth_call", [{ to: vault, data: TOKEN_SELECTOR }, at], data).catch(
    absent("the vault's token()"),
  );
  if (token.length === 66) {
    const address = `0x${token.slice(26)}`;
    const answer = await ask("eth_call", [{ to: address, data: DECIMALS_SELECTOR }, at], data).catch(
      absent(`the decimals() of the vault's token ${address}`),
    );
    const tokenDecimals = answer.length === 66 ? Number(quantity(answer)) : undefined;
    if (tokenDecimals !== undefined && tokenDecimals !== decimals) {
      return {
        outcome: "wrong",
        reason: `STAKE_DECIMALS is ${decimals}, but the vault's token ${address} on chain ${id} has ${tokenDecimals} decimals: every stake_amount and MIN_STAKE would be off by a factor of 10^${Math.abs(tokenDecimals - decimals)}. Set STAKE_DECIMALS=${tokenDecimals}`,
      };
    }
  }
  if (startBlock === 0) return { outcome: "ok" };
  const before = `0x${(startBlock - 1).toString(16)}`;
  const answer = await ask("eth_call", [{ to: vault, data: TOTAL_STAKED_SELECTOR }, before], data);
  const staked = answer === "0x" ? 0n : quantity(answer);
  if (staked === 0n) return { outcome: "ok" };
  return {
    outcome: "wrong",
    reason:
      `START_BLOCK${suffix} is ${startBlock}, but the vault at ${vault} on chain ${id} already held ` +
      `${formatUnits(staked, decimals)} in stakes at block ${startBlock - 1}: Ponder would miss them, and ` +
      `every developers row with one. Set START_BLOCK${suffix} to the vault's deployment block (or lower)`,
  };
}

/** Every chain's check, side by side. */
export const checkVaults = (config: SidecarConfig, timeoutMs?: number) =>
  Promise.all(config.chains.map((chain) => checkVault(chain, config.stakeDecimals, timeoutMs)));

/**
 * A check the provider left undone, asked again `firstMs` later and then twice as long each time,
 * up to an hour, until it gives a verdict (`onVerdict`'s): a provider down at start would
 * otherwise have left a wrong STAKE_DECIMALS or START_BLOCK unseen for the life of the process.
 * Returns the stop.
 */
export function checkAgainUntilDecided(
  chain: ChainConfig,
  decimals: number,
  onVerdict: (check: VaultCheck) => void,
  { firstMs = 60_000, timeoutMs }: { firstMs?: number; timeoutMs?: number } = {},
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const after = (ms: number) => {
    timer = setTimeout(async () => {
      const check = await checkVault(chain, decimals, timeoutMs);
      if (stopped) return;
      if (check.outcome === "unchecked") after(Math.min(ms * 2, 3_600_000));
      else onVerdict(check);
    }, ms);
    timer.unref();
  };
  after(firstMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

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
 * Each URL is asked in turn, all of it on one URL (a fallback behind another is not mixed in).
 * Whatever a provider may say because it is behind is no verdict: its head below START_BLOCK, no
 * code at the address (a wrong address, or a node not yet at the deployment) is said, not
 * refused. A provider that cannot answer (down, slow, or a node that keeps no state that old)
 * leaves the check undone, with a warning: the sync waits for it 2 s at most (main.ts).
 */
import { formatUnits } from "viem";
import type { ChainConfig, SidecarConfig } from "../lib/config";
import { callRpc, quantity, RpcAnswerError } from "./json-rpc";

/** `totalStaked()`'s selector (test/vault-check.test.ts checks it against the ABI). */
export const TOTAL_STAKED_SELECTOR = "0x817b1cd2";
/** The vault's `token()`, and the ERC-20 `decimals()` (checked against the ABIs in the same test). */
export const TOKEN_SELECTOR = "0xfc0c546a";
export const DECIMALS_SELECTOR = "0x313ce567";

export type VaultCheck = { chainId: number } & (
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

/** The first URL's verdict; a URL that cannot say (it fails, or may be behind) gives way to the next. */
export async function checkVault(chain: ChainConfig, decimals: number, timeoutMs = 5000): Promise<VaultCheck> {
  let undone = "";
  for (const url of chain.rpcUrls) {
    const verdict = await checkAt(url, chain, decimals, timeoutMs).catch(
      (error: unknown): Verdict => ({ outcome: "unchecked", reason: (error as Error).message.split("\n")[0] ?? "" }),
    );
    if (verdict.outcome !== "unchecked") return { chainId: chain.id, ...verdict };
    undone = verdict.reason;
  }
  return { chainId: chain.id, outcome: "unchecked", reason: undone };
}

type Verdict = { outcome: "ok" } | { outcome: "wrong" | "unchecked"; reason: string };

async function checkAt(url: string, chain: ChainConfig, decimals: number, timeoutMs: number): Promise<Verdict> {
  const { id, stakeVault: vault, suffix, startBlock } = chain;
  const ask = <T>(method: string, params: unknown[], parse: (result: unknown) => T) =>
    callRpc([url], method, params, parse, timeoutMs);
  const answered = Number(await ask("eth_chainId", [], quantity));
  if (answered !== id) {
    return { outcome: "wrong", reason: `RPC_URL${suffix}: a URL of it answers chain ${answered}, not ${id}` };
  }
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
  const at = `0x${head.toString(16)}`;
  // A node's own answer that the call failed (a vault or token without these) skips the check;
  // a provider that fails to answer leaves the whole check undone, as any other question here.
  const revert = (error: unknown) => {
    if (error instanceof RpcAnswerError) return "0x";
    throw error;
  };
  const token = await ask("eth_call", [{ to: vault, data: TOKEN_SELECTOR }, at], data).catch(revert);
  if (token.length === 66) {
    const address = `0x${token.slice(26)}`;
    const answer = await ask("eth_call", [{ to: address, data: DECIMALS_SELECTOR }, at], data).catch(revert);
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

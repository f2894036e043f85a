/**
 * Each chain's vault, checked once at start against the chain: a contract at STAKE_VAULT_ADDRESS,
 * and no stake in it before START_BLOCK.
 *
 * Why: Ponder indexes the vault's events from START_BLOCK on. A stake made before it is missing
 * from every sum, and every developers row would be short of it, with nothing to say so but
 * `stakesync verify`. `totalStaked()` at START_BLOCK − 1 is the sum of every stake at that block:
 * 0 means each developer's stake was 0 then, so the events before START_BLOCK change no sum (a
 * vault deployed at or after START_BLOCK has no code at that block, and the call answers "0x").
 * A provider that cannot answer (down, slow, or a node that keeps no state that old) leaves the
 * check undone, with a warning: the sync does not wait for it.
 */
import { formatUnits } from "viem";
import type { ChainConfig, SidecarConfig } from "../lib/config";
import { callRpc, quantity } from "./json-rpc";

/** `totalStaked()`'s selector (test/fast/vault-check.test.ts checks it against the ABI). */
export const TOTAL_STAKED_SELECTOR = "0x817b1cd2";

export type VaultCheck = { chainId: number } & (
  | { outcome: "ok" }
  /** The configuration is wrong: the sidecar refuses to start. */
  | { outcome: "wrong"; reason: string }
  /** The provider did not say: the sidecar starts, and warns. */
  | { outcome: "unchecked"; reason: string }
);

const data = (result: unknown) => {
  if (typeof result !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(result)) {
    throw new Error(`expected hex data, got ${JSON.stringify(result)?.slice(0, 80)}`);
  }
  return result;
};

export async function checkVault(chain: ChainConfig, decimals: number, timeoutMs = 5000): Promise<VaultCheck> {
  const { id: chainId, stakeVault: vault, suffix } = chain;
  try {
    const code = await callRpc(chain.rpcUrls, "eth_getCode", [vault, "latest"], data, timeoutMs);
    if (code === "0x") {
      return {
        chainId,
        outcome: "wrong",
        reason: `STAKE_VAULT_ADDRESS${suffix}: no contract at ${vault} on chain ${chainId} (at its latest block)`,
      };
    }
    if (chain.startBlock === 0) return { chainId, outcome: "ok" };
    const before = `0x${(chain.startBlock - 1).toString(16)}`;
    const answer = await callRpc(
      chain.rpcUrls,
      "eth_call",
      [{ to: vault, data: TOTAL_STAKED_SELECTOR }, before],
      data,
      timeoutMs,
    );
    const staked = answer === "0x" ? 0n : quantity(answer);
    if (staked === 0n) return { chainId, outcome: "ok" };
    return {
      chainId,
      outcome: "wrong",
      reason:
        `START_BLOCK${suffix} is ${chain.startBlock}, but the vault at ${vault} on chain ${chainId} already held ` +
        `${formatUnits(staked, decimals)} in stakes at block ${chain.startBlock - 1}: Ponder would miss them, and ` +
        `every developers row with one. Set START_BLOCK${suffix} to the vault's deployment block (or lower)`,
    };
  } catch (error) {
    return { chainId, outcome: "unchecked", reason: (error as Error).message.split("\n")[0] ?? "" };
  }
}

/** Every chain's check, side by side. */
export const checkVaults = (config: SidecarConfig, timeoutMs?: number) =>
  Promise.all(config.chains.map((chain) => checkVault(chain, config.stakeDecimals, timeoutMs)));

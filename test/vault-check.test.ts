/**
 * The sidecar checks each chain's vault against the chain at start (sidecar/vault-check.ts): a
 * START_BLOCK after stakes were made, or an address with no contract, stops it with one line; a
 * provider that cannot say lets it start. Against a real anvil with the vault deployed.
 */
import { toFunctionSelector } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { StakeVaultAbi } from "../abis/StakeVault";
import { type ChainConfig, loadSidecarConfig } from "../lib/config";
import { startSidecar as startLocalSidecar } from "../lib/local/stack";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { checkVault, TOTAL_STAKED_SELECTOR } from "../sidecar/vault-check";
import { cleanup, spawnForTest, startChain, type TestChain } from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

afterAll(cleanup);

const USDC = 1_000_000n;

function chainConfig(chain: TestChain, env: Record<string, string>): ChainConfig {
  const config = loadSidecarConfig({
    CHAIN_ID: "31337",
    RPC_URL: chain.rpcUrl,
    STAKE_VAULT_ADDRESS: chain.deployment.stakeVault,
    DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
    ...env,
  });
  return config.chains[0] as ChainConfig;
}

describe("the vault's check at start", () => {
  it("calls totalStaked() by its selector", () => {
    const item = StakeVaultAbi.find((i) => i.type === "function" && i.name === "totalStaked");
    expect(item && toFunctionSelector(item as never)).toBe(TOTAL_STAKED_SELECTOR);
  });

  it("refuses a START_BLOCK after stakes, or an address without a contract; passes the deployment block; leaves a dead provider unchecked", async () => {
    const chain = await startChain();
    const [w] = wallets(1, "vault-check") as [`0x${string}`];
    await chain.vault.fund(100n * USDC);
    const staked = await chain.vault.stakeFor(w, 12n * USDC + 500_000n);
    await mine(chain, 3);
    const after = Number(staked.blockNumber) + 1;

    expect(await checkVault(chainConfig(chain, { START_BLOCK: String(chain.deployment.blockNumber) }), 6)).toEqual({
      chainId: 31337,
      outcome: "ok",
    });
    // Up to the stake's own block, nothing before START_BLOCK counts yet.
    expect(await checkVault(chainConfig(chain, { START_BLOCK: String(after - 1) }), 6)).toMatchObject({
      outcome: "ok",
    });
    expect(await checkVault(chainConfig(chain, { START_BLOCK: "0" }), 6)).toMatchObject({ outcome: "ok" });

    const late = await checkVault(chainConfig(chain, { START_BLOCK: String(after) }), 6);
    expect(late).toMatchObject({ outcome: "wrong" });
    expect(late.outcome === "wrong" && late.reason).toContain(`START_BLOCK is ${after}`);
    expect(late.outcome === "wrong" && late.reason).toContain(`12.5 in stakes at block ${after - 1}`);

    const nowhere = await checkVault(
      chainConfig(chain, { STAKE_VAULT_ADDRESS: `0x${"5".repeat(40)}`, START_BLOCK: String(after) }),
      6,
    );
    expect(nowhere).toMatchObject({ outcome: "wrong" });
    expect(nowhere.outcome === "wrong" && nowhere.reason).toMatch(/^STAKE_VAULT_ADDRESS: no contract at 0x5{40}/);

    const dead = await checkVault(chainConfig(chain, { RPC_URL: "http://127.0.0.1:1", START_BLOCK: "5" }), 6);
    expect(dead).toMatchObject({ outcome: "unchecked" });
    // A fallback that answers is asked when the first URL does not.
    const fallback = await checkVault(
      chainConfig(chain, { RPC_URL: `http://127.0.0.1:1,${chain.rpcUrl}`, START_BLOCK: String(after) }),
      6,
    );
    expect(fallback).toMatchObject({ outcome: "wrong" });

    // The sidecar itself: one line naming the variable, exit 1, before its database is there.
    const sidecar = await startLocalSidecar(
      {
        CHAIN_ID: "31337",
        RPC_URL: chain.rpcUrl,
        STAKE_VAULT_ADDRESS: chain.deployment.stakeVault,
        START_BLOCK: String(after),
        DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
        RETRY_DELAY_MS: "200",
      },
      { port: await freePort(), spawn: spawnForTest },
    );
    expect(await sidecar.exited).toBe(1);
    expect(sidecar.output()).toMatch(/stakesync: configuration error: START_BLOCK is \d+, but the vault/);

    // With no provider to ask, it starts (and says it could not check).
    const unchecked = await startLocalSidecar(
      {
        CHAIN_ID: "31337",
        RPC_URL: "http://127.0.0.1:1",
        STAKE_VAULT_ADDRESS: chain.deployment.stakeVault,
        START_BLOCK: String(after),
        DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
        RETRY_DELAY_MS: "200",
      },
      { port: await freePort(), spawn: spawnForTest },
    );
    await waitFor("the warning that the vault is unchecked", () =>
      /could not check STAKE_VAULT_ADDRESS and START_BLOCK/.test(unchecked.output()),
    );
    unchecked.process.kill("SIGTERM");
    expect(await unchecked.exited).toBe(0);
  });
});

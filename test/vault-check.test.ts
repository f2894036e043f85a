/**
 * The sidecar checks each chain's vault against the chain at start (sidecar/vault-check.ts): a
 * START_BLOCK after stakes were made, or an RPC URL of another chain, stops it with one line; an
 * address with no contract, or a provider that cannot say, lets it start with a warning. Against a real anvil with the vault deployed.
 */
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { toFunctionSelector } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { MockUSDCAbi } from "../abis/MockUSDC";
import { StakeVaultAbi } from "../abis/StakeVault";
import { type ChainConfig, loadSidecarConfig } from "../lib/config";
import { startSidecar as startLocalSidecar } from "../lib/local/stack";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { checkVault, DECIMALS_SELECTOR, TOKEN_SELECTOR, TOTAL_STAKED_SELECTOR } from "../sidecar/vault-check";
import { cleanup, freshDatabase, spawnForTest, startChain, type TestChain } from "./helpers/stack";
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
  it("calls totalStaked(), token() and decimals() by their selectors", () => {
    const selector = (abi: readonly { type: string; name?: string }[], name: string) => {
      const item = abi.find((i) => i.type === "function" && i.name === name);
      return item && toFunctionSelector(item as never);
    };
    expect(selector(StakeVaultAbi, "totalStaked")).toBe(TOTAL_STAKED_SELECTOR);
    expect(selector(StakeVaultAbi, "token")).toBe(TOKEN_SELECTOR);
    expect(selector(MockUSDCAbi, "decimals")).toBe(DECIMALS_SELECTOR);
  });

  it("refuses a START_BLOCK after stakes or another chain's RPC; passes the deployment block; warns of an address without a contract or a dead provider", async () => {
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
    // STAKE_DECIMALS not the token's: every amount off by a power of ten, and verify said OK.
    const decimals = await checkVault(chainConfig(chain, { START_BLOCK: "0" }), 18);
    expect(decimals).toMatchObject({ outcome: "wrong" });
    expect(decimals.outcome === "wrong" && decimals.reason).toMatch(
      /^STAKE_DECIMALS is 18, but the vault's token 0x[0-9a-f]{40} on chain 31337 has 6 decimals: .* Set STAKE_DECIMALS=6$/,
    );

    const late = await checkVault(chainConfig(chain, { START_BLOCK: String(after) }), 6);
    expect(late).toMatchObject({ outcome: "wrong" });
    expect(late.outcome === "wrong" && late.reason).toContain(`START_BLOCK is ${after}`);
    expect(late.outcome === "wrong" && late.reason).toContain(`12.5 in stakes at block ${after - 1}`);

    const nowhere = await checkVault(
      chainConfig(chain, { STAKE_VAULT_ADDRESS: `0x${"5".repeat(40)}`, START_BLOCK: String(after) }),
      6,
    );
    // No code may be a provider not yet at the deployment: said, not refused.
    expect(nowhere).toMatchObject({ outcome: "unchecked" });
    expect(nowhere.outcome === "unchecked" && nowhere.reason).toMatch(/^no contract at STAKE_VAULT_ADDRESS 0x5{40}/);
    // An RPC URL of another chain: Ponder would index that chain.
    const other = await checkVault(chainConfig(chain, { CHAIN_ID: "1", START_BLOCK: "1" }), 6);
    expect(other).toMatchObject({
      outcome: "wrong",
      reason: "RPC_URL, URL 1 of 1 answers chain 31337, not 1: Ponder and the sidecar would read another chain from it",
    });
    // A provider whose head is below START_BLOCK cannot say.
    const ahead = await checkVault(chainConfig(chain, { START_BLOCK: "1000000" }), 6);
    expect(ahead).toMatchObject({ outcome: "unchecked" });

    const dead = await checkVault(chainConfig(chain, { RPC_URL: "http://127.0.0.1:1", START_BLOCK: "5" }), 6);
    expect(dead).toMatchObject({ outcome: "unchecked" });
    // A provider that answers everything but eth_call (a rate limit, say): no verdict on the
    // decimals, so none at all; before, the failed call read as "no token()", and "ok".
    const noCalls = createHttpServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      if ((JSON.parse(body) as { method: string }).method === "eth_call") return res.writeHead(429).end();
      const answer = await fetch(chain.rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      res.writeHead(answer.status, { "content-type": "application/json" }).end(await answer.text());
    });
    await new Promise<void>((resolve) => noCalls.listen(0, "127.0.0.1", resolve));
    try {
      const limited = await checkVault(
        chainConfig(chain, {
          RPC_URL: `http://127.0.0.1:${(noCalls.address() as AddressInfo).port}`,
          START_BLOCK: "0",
        }),
        18,
      );
      expect(limited).toMatchObject({ outcome: "unchecked" });
    } finally {
      noCalls.close();
    }
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

  it("waits 2 s for a provider that does not answer, then syncs meanwhile", async () => {
    // A provider that takes the connection and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const address = silent.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const sidecar = await startLocalSidecar(
      {
        CHAIN_ID: "31337",
        RPC_URL: `http://127.0.0.1:${port}`,
        STAKE_VAULT_ADDRESS: `0x${"5".repeat(40)}`,
        START_BLOCK: "10",
        DATABASE_URL: await freshDatabase(),
      },
      { port: await freePort(), spawn: spawnForTest },
    );
    try {
      await waitFor("the sync to start without the check's answer", () =>
        /"msg":"leader: syncing"/.test(sidecar.output()),
      );
      const waited = sidecar.output().match(/"waited_ms":(\d+)[^\n]*no answer yet to the check/);
      // Unset (a constant read before its declaration), the wait was over in a millisecond.
      expect(Number(waited?.[1])).toBeGreaterThanOrEqual(1900);
    } finally {
      sidecar.process.kill("SIGTERM");
      await sidecar.exited;
      silent.close();
    }
  });
});

import { BaseError, ContractFunctionRevertedError, decodeEventLog, parseUnits } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StakeVaultAbi } from "../abis/StakeVault";
import { connect, vault } from "../lib/contracts";
import { cleanup, startChain, type TestChain } from "./helpers/stack";

const OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const; // anvil #1
const ALICE = "0x00000000000000000000000000000000000a11ce" as const;
const BOB = "0x0000000000000000000000000000000000000b0b" as const;

let chain: TestChain;
let other: ReturnType<typeof vault>;
let otherAddress: `0x${string}`;

beforeAll(async () => {
  chain = await startChain();
  const otherClients = await connect(chain.rpcUrl, OTHER_KEY);
  otherAddress = otherClients.wallet.account.address;
  other = vault(otherClients, chain.deployment);
  await chain.vault.fund(parseUnits("1000000", 6));
  await other.fund(parseUnits("1000", 6));
});
afterAll(cleanup);

function eventsOf(receipt: {
  logs: { address: string; data: `0x${string}`; topics: [`0x${string}`, ...`0x${string}`[]] | [] }[];
}) {
  return receipt.logs
    .filter((log) => log.address.toLowerCase() === chain.deployment.stakeVault.toLowerCase())
    .map((log) => decodeEventLog({ abi: StakeVaultAbi, data: log.data, topics: log.topics }))
    .map(({ eventName, args }) => ({ eventName, developer: args.developer.toLowerCase(), amount: args.amount }));
}

async function revertReason(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    const revert = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null;
    if (revert instanceof ContractFunctionRevertedError) return revert.reason;
    throw error;
  }
  return undefined;
}

describe("StakeVault", () => {
  it("emits Staked from stake, stakeFor and stakeForMany, and sums stakes", async () => {
    expect(eventsOf(await other.stake(100n))).toEqual([
      { eventName: "Staked", developer: otherAddress.toLowerCase(), amount: 100n },
    ]);
    expect(eventsOf(await chain.vault.stakeFor(ALICE, 5n))).toEqual([
      { eventName: "Staked", developer: ALICE, amount: 5n },
    ]);
    expect(eventsOf(await chain.vault.stakeForMany([ALICE, BOB], [7n, 9n]))).toEqual([
      { eventName: "Staked", developer: ALICE, amount: 7n },
      { eventName: "Staked", developer: BOB, amount: 9n },
    ]);
    expect(await chain.vault.stakeOf(ALICE)).toBe(12n);
    expect(await chain.vault.stakeOf(BOB)).toBe(9n);
  });

  it("emits Unstaked and Slashed and lowers the stake", async () => {
    expect(eventsOf(await other.unstake(40n))).toEqual([
      { eventName: "Unstaked", developer: otherAddress.toLowerCase(), amount: 40n },
    ]);
    expect(eventsOf(await chain.vault.slash(otherAddress, 10n))).toEqual([
      { eventName: "Slashed", developer: otherAddress.toLowerCase(), amount: 10n },
    ]);
    expect(await chain.vault.stakeOf(otherAddress)).toBe(50n);
    const total = await chain.publicClient.readContract({
      address: chain.deployment.stakeVault,
      abi: StakeVaultAbi,
      functionName: "totalStaked",
    });
    expect(total).toBe(50n + 12n + 9n);
  });

  it("reverts with a reason on bad input", async () => {
    expect(await revertReason(() => chain.vault.stake(0n))).toBe("StakeVault: zero amount");
    expect(await revertReason(() => chain.vault.stakeFor(ALICE, 0n))).toBe("StakeVault: zero amount");
    expect(await revertReason(() => chain.vault.stakeForMany([ALICE, BOB], [1n]))).toBe("StakeVault: length mismatch");
    expect(await revertReason(() => other.unstake(51n))).toBe("StakeVault: insufficient stake");
    expect(await revertReason(() => other.unstake(0n))).toBe("StakeVault: zero amount");
    expect(await revertReason(() => other.slash(ALICE, 1n))).toBe("StakeVault: not owner");
    expect(await revertReason(() => chain.vault.slash(BOB, 10n))).toBe("StakeVault: insufficient stake");
  });

  it("MockUSDC has 6 decimals and public mint", async () => {
    const { MockUSDCAbi } = await import("../abis/MockUSDC");
    const token = { address: chain.deployment.token, abi: MockUSDCAbi } as const;
    expect(await chain.publicClient.readContract({ ...token, functionName: "decimals" })).toBe(6);
    const before = await chain.publicClient.readContract({ ...token, functionName: "balanceOf", args: [BOB] });
    await other.fund(0n); // approve path works for zero too
    const { wallet } = await connect(chain.rpcUrl, OTHER_KEY);
    const hash = await wallet.writeContract({ ...token, functionName: "mint", args: [BOB, 123n] });
    await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(await chain.publicClient.readContract({ ...token, functionName: "balanceOf", args: [BOB] })).toBe(
      before + 123n,
    );
  });
});

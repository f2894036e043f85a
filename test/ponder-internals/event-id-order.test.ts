/**
 * Assumption: Ponder's event.id (stake_event.id) is a 75-digit checkpoint-like string whose
 * characters 1–10 are the block's timestamp, 11–26 the chain id and 27–42 the block number, and
 * ids sort (`ORDER BY id COLLATE "C"`) as (block_timestamp, chain_id, block_number, log_index):
 * chain order on one chain, and across chains (implied by the fixed-width fields this test pins
 * on one) the order in which the sidecar finds a developer's first activation (find-activations.ts reads the timestamp at 1–10 and orders several chains'
 * events by id; plan-developers.ts too). The sidecar orders and pages a developer's events by id.
 */
import { afterAll, describe, expect, it } from "vitest";
import { StakeVaultAbi } from "../../abis/StakeVault";
import { cleanup, sql, startStack, waitIndexed } from "./harness";

afterAll(cleanup);

describe("event-id-order", () => {
  it('stake_event ids are 75 digits: timestamp at 1–10, chain id at 11–26, block number at 27–42; ORDER BY id COLLATE "C" is (block_timestamp, chain_id, block_number, log_index)', async () => {
    const { chain, databaseUrl, schema, developers, ponder } = await startStack();
    const [a, b, c] = developers as [`0x${string}`, `0x${string}`, `0x${string}`];
    const account = chain.wallet.account.address;
    const v = { address: chain.deployment.stakeVault, abi: StakeVaultAbi, gas: 500_000n } as const;

    // Two realtime blocks with several transactions and several events each (automine off).
    await chain.publicClient.request({ method: "evm_setAutomine" as never, params: [false] as never });
    try {
      for (let round = 0; round < 2; round++) {
        let nonce = await chain.publicClient.getTransactionCount({ address: account, blockTag: "pending" });
        const send = (tx: Parameters<typeof chain.wallet.writeContract>[0]) =>
          chain.wallet.writeContract({ ...tx, nonce: nonce++ });
        await send({
          ...v,
          functionName: "stakeForMany",
          args: [
            [a, b, c],
            [10n, 20n, 30n],
          ],
        });
        await send({ ...v, functionName: "stakeFor", args: [b, 5n] });
        await send({ ...v, functionName: "slash", args: [a, 1n] });
        await send({
          ...v,
          functionName: "stakeForMany",
          args: [
            [c, a],
            [7n, 8n],
          ],
        });
        await chain.publicClient.request({ method: "evm_mine" as never });
      }
    } finally {
      await chain.publicClient.request({ method: "evm_setAutomine" as never, params: [true] as never });
    }
    await waitIndexed(databaseUrl, schema, chain, ponder);

    const rows = await sql<{
      id: string;
      chain_id: number;
      block_number: string;
      block_timestamp: string;
      log_index: number;
    }>(
      databaseUrl,
      `SELECT id, chain_id, block_number::text, block_timestamp::text, log_index
         FROM "${schema}".stake_event ORDER BY id COLLATE "C"`,
    );
    const perBlock = new Map<string, number>();
    for (const r of rows) perBlock.set(r.block_number, (perBlock.get(r.block_number) ?? 0) + 1);
    // The workload's blocks plus the two above (7 events each, in 4 transactions).
    expect([...perBlock.values()].filter((n) => n >= 7).length, "the test made two blocks of 7 events").toBe(2);
    expect(perBlock.size).toBeGreaterThanOrEqual(5);

    for (const r of rows) {
      expect(r.id, "assumption event-id-order: stake_event.id is a 75-digit string").toMatch(/^\d{75}$/);
      expect(
        Number(r.id.slice(26, 42)),
        "assumption event-id-order: characters 27–42 of stake_event.id are the block number",
      ).toBe(Number(r.block_number));
      expect(
        r.id.slice(0, 10),
        "assumption event-id-order: characters 1–10 of stake_event.id are the block's timestamp (find-activations.ts reads it there)",
      ).toBe(r.block_timestamp.padStart(10, "0"));
      expect(
        Number(r.id.slice(10, 26)),
        "assumption event-id-order: characters 11–26 of stake_event.id are the chain id (several chains' events order by it after the timestamp)",
      ).toBe(r.chain_id);
    }
    const chainOrder = [...rows]
      .sort(
        (x, y) =>
          Number(x.block_timestamp) - Number(y.block_timestamp) ||
          x.chain_id - y.chain_id ||
          Number(x.block_number) - Number(y.block_number) ||
          x.log_index - y.log_index,
      )
      .map((r) => r.id);
    expect(
      rows.map((r) => r.id),
      'assumption event-id-order: ORDER BY id COLLATE "C" equals the order of (block_timestamp, chain_id, block_number, log_index)',
    ).toEqual(chainOrder);
  });
});

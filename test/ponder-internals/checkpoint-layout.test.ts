/**
 * Assumption: `_ponder_checkpoint` has one row per chain with columns chain_name, chain_id,
 * latest_checkpoint, safe_checkpoint, finalized_checkpoint; a checkpoint is a 75-digit string
 * whose characters 1–10 are the block timestamp, 11–26 the chain id and 27–42 the block number.
 * The sidecar reads progress as `substring(latest_checkpoint from 27 for 16)`.
 */
import { afterAll, describe, expect, it } from "vitest";
import { checkpointBlock, cleanup, head, sql, startStack, statusBlock } from "./harness";

afterAll(cleanup);

describe("checkpoint-layout", () => {
  it("_ponder_checkpoint has chain_name, chain_id, latest/safe/finalized_checkpoint; a checkpoint is 75 digits: timestamp (1–10), chain id (11–26), block number (27–42)", async () => {
    const { chain, databaseUrl, schema, ponder } = await startStack();

    const columns = await sql<{ column_name: string }>(
      databaseUrl,
      "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = '_ponder_checkpoint'",
      [schema],
    );
    expect(
      columns.map((c) => c.column_name).sort(),
      "assumption checkpoint-layout: _ponder_checkpoint has exactly the columns chain_name, chain_id, latest_checkpoint, safe_checkpoint, finalized_checkpoint",
    ).toEqual(["chain_id", "chain_name", "finalized_checkpoint", "latest_checkpoint", "safe_checkpoint"]);

    const rows = await sql<{
      chain_id: string;
      latest_checkpoint: string;
      safe_checkpoint: string;
      finalized_checkpoint: string;
      sql_block: string;
    }>(
      databaseUrl,
      `SELECT chain_id::text, latest_checkpoint, safe_checkpoint, finalized_checkpoint,
              substring(latest_checkpoint from 27 for 16)::bigint::text AS sql_block
         FROM "${schema}"._ponder_checkpoint`,
    );
    expect(rows.length, "assumption checkpoint-layout: _ponder_checkpoint has one row per indexed chain").toBe(1);
    const row = rows[0]!;
    expect(Number(row.chain_id), "assumption checkpoint-layout: _ponder_checkpoint.chain_id is the chain id").toBe(
      chain.chainId,
    );
    for (const checkpoint of [row.latest_checkpoint, row.safe_checkpoint, row.finalized_checkpoint]) {
      expect(checkpoint, "assumption checkpoint-layout: each checkpoint is a 75-digit string").toMatch(/^\d{75}$/);
    }

    // Nothing is mined while Ponder runs here: the head is the block indexed last.
    const headBlock = await head(chain);
    expect(
      Number(row.sql_block),
      "assumption checkpoint-layout: substring(latest_checkpoint from 27 for 16) is the block number (the head, once indexed to it)",
    ).toBe(headBlock);
    expect(checkpointBlock(row.latest_checkpoint)).toBe(headBlock);
    expect(
      Number(row.sql_block),
      "assumption checkpoint-layout: substring(latest_checkpoint from 27 for 16) is the block Ponder's own /status decodes from it",
    ).toBe(await statusBlock(ponder, chain.chainId));
    expect(
      Number(row.latest_checkpoint.slice(10, 26)),
      "assumption checkpoint-layout: characters 11–26 of a checkpoint are the chain id",
    ).toBe(chain.chainId);
    const block = await chain.publicClient.getBlock({ blockNumber: BigInt(headBlock) });
    expect(
      row.latest_checkpoint.slice(0, 10),
      "assumption checkpoint-layout: characters 1–10 of a checkpoint are the block's timestamp",
    ).toBe(block.timestamp.toString().padStart(10, "0"));
    const [safe, finalized, latest] = [row.safe_checkpoint, row.finalized_checkpoint, row.latest_checkpoint].map(
      checkpointBlock,
    ) as [number, number, number];
    expect(
      safe <= finalized && finalized <= latest,
      `assumption checkpoint-layout: block numbers at 27–42 order as safe (${safe}) <= finalized (${finalized}) <= latest (${latest})`,
    ).toBe(true);
  });
});

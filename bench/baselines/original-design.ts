/**
 * The original design's listener, built as described (seeds/000): eth_getLogs in 1000-block
 * batches (halved when the RPC refuses the answer), one UPDATE per event, a checkpoint per batch.
 * It lives here to be measured against, not in the product. Unlike the original it sums stakes
 * rather than overwriting them, so that both end at the same table.
 */
import pg from "pg";
import { type Address, createPublicClient, http, parseAbiItem } from "viem";

const events = [
  parseAbiItem("event Staked(address indexed developer, uint256 amount)"),
  parseAbiItem("event Unstaked(address indexed developer, uint256 amount)"),
  parseAbiItem("event Slashed(address indexed developer, uint256 amount)"),
];

export async function runOriginalDesign(options: {
  rpcUrl: string;
  vault: Address;
  fromBlock: number;
  toBlock: number;
  databaseUrl: string;
  developers: Address[];
}): Promise<{ events: number; seconds: number; batchSize: number }> {
  const db = new pg.Client({ connectionString: options.databaseUrl });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS baseline CASCADE; CREATE SCHEMA baseline;
    CREATE TABLE baseline.developers (wallet_address text PRIMARY KEY, stake_amount numeric NOT NULL DEFAULT 0,
      status text NOT NULL DEFAULT 'pending', staked_at timestamptz, updated_at timestamptz);
    CREATE TABLE baseline.system_state (key text PRIMARY KEY, value text, updated_at timestamptz)`);
  await db.query("INSERT INTO baseline.developers (wallet_address) SELECT lower(unnest($1::text[]))", [
    options.developers,
  ]);
  const client = createPublicClient({ transport: http(options.rpcUrl) });

  const started = performance.now();
  let count = 0;
  let batchSize = 1000;
  let from = options.fromBlock;
  while (from <= options.toBlock) {
    const to = Math.min(from + batchSize - 1, options.toBlock);
    let logs: Awaited<ReturnType<typeof client.getLogs<undefined, typeof events>>>;
    try {
      logs = await client.getLogs({ address: options.vault, events, fromBlock: BigInt(from), toBlock: BigInt(to) });
    } catch {
      if (batchSize === 1) throw new Error(`eth_getLogs fails even for block ${from}`);
      batchSize = Math.ceil(batchSize / 2); // the design's 1000 blocks are too many for this chain
      continue;
    }
    for (const log of logs) {
      const delta = log.eventName === "Staked" ? log.args.amount : -(log.args.amount ?? 0n);
      await db.query(
        `UPDATE baseline.developers SET stake_amount = stake_amount + $2::numeric / 1000000,
           status = CASE WHEN stake_amount + $2::numeric / 1000000 > 0 THEN 'active' ELSE status END,
           staked_at = COALESCE(staked_at, now()), updated_at = now()
         WHERE wallet_address = $1`,
        [log.args.developer?.toLowerCase(), (delta ?? 0n).toString()],
      );
      count++;
    }
    await db.query(
      `INSERT INTO baseline.system_state VALUES ('last_processed_block_stake_vault', $1, now())
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()`,
      [String(to)],
    );
    from = to + 1;
  }
  const seconds = (performance.now() - started) / 1000;
  await db.end();
  return { events: count, seconds, batchSize };
}

/**
 * The original design's listener as it ran in production (seeds/000), for the adoption test: it
 * is what stakesync replaces, with its faults kept. It handles Staked events only (unstakes and
 * slashes never reach the table), overwrites stake_amount with the event's amount instead of
 * summing, applies an event after one confirmation and never looks back (a deeper reorg leaves
 * it applied), and updates only rows that exist (a stake before signup is dropped).
 */
import pg from "pg";
import { type Address, createPublicClient, http, parseAbiItem } from "viem";

const STAKED = parseAbiItem("event Staked(address indexed developer, uint256 amount)");

export function startOriginalListener(options: {
  rpcUrl: string;
  vault: Address;
  fromBlock: number;
  databaseUrl: string;
  confirmations?: number;
}) {
  const client = createPublicClient({ transport: http(options.rpcUrl) });
  const db = new pg.Pool({ connectionString: options.databaseUrl, max: 1 });
  const state = { processedTo: options.fromBlock - 1, applied: 0, stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      const head = Number(await client.getBlockNumber({ cacheTime: 0 }));
      const to = head - (options.confirmations ?? 1);
      if (to > state.processedTo) {
        const logs = await client.getLogs({
          address: options.vault,
          event: STAKED,
          fromBlock: BigInt(state.processedTo + 1),
          toBlock: BigInt(to),
        });
        for (const log of logs) {
          await db.query(
            `UPDATE developers SET stake_amount = $2::numeric / 1000000, staked_at = now(), status = 'active',
                    updated_at = now()
              WHERE wallet_address = $1`,
            [log.args.developer?.toLowerCase(), String(log.args.amount)],
          );
          state.applied += 1;
        }
        state.processedTo = to;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  let stopping: Promise<void> | undefined;
  return {
    state,
    // Once, however often it is called: a test stops it in its scenario and again when it ends.
    stop: () =>
      (stopping ??= (async () => {
        state.stopped = true;
        await loop;
        await db.end();
      })()),
  };
}

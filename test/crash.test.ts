/** SIGKILL `ponder start` in the middle of a backfill, start it again: exact, nothing doubled. */
import { afterAll, expect, it } from "vitest";
import { waitFor } from "../lib/wait";
import {
  chainEnv,
  chainStakes,
  cleanup,
  freshDatabase,
  ponderStakes,
  releaseSchemaLock,
  sql,
  startChain,
  startPonder,
  waitIndexedToHead,
} from "./helpers/stack";
import { bulkStakes, mine, vaultLogCount, wallets } from "./helpers/workload";

afterAll(cleanup);

it("recovers from SIGKILL mid-backfill with exact state and no duplicated events", async () => {
  const chain = await startChain();
  const developers = wallets(1000, "crash");
  await bulkStakes(chain, developers, 20); // 20,000 events in 200 blocks
  await mine(chain, 40);
  const total = await vaultLogCount(chain);
  const databaseUrl = await freshDatabase();
  const env = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: "crash_test" };
  const count = async () =>
    Number(
      (
        await sql<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM crash_test.stake_event").catch(() => [
          { n: "0" },
        ])
      )[0]?.n,
    );

  const first = await startPonder(env);
  await waitFor("the backfill to write its first rows", async () => (await count()) > 0, {
    timeoutMs: 120_000,
    intervalMs: 20,
  });
  await first.kill();
  const atKill = await count();
  expect(atKill).toBeGreaterThan(0);
  expect(atKill).toBeLessThan(total); // killed in the middle, not after

  await releaseSchemaLock(databaseUrl, "crash_test");
  const second = await startPonder(env);
  await second.waitReady();
  await waitIndexedToHead(databaseUrl, "crash_test", chain);
  expect(second.output()).toContain("Detected crash recovery");

  expect(await count()).toBe(total);
  const [distinct] = await sql<{ n: string }>(
    databaseUrl,
    "SELECT count(DISTINCT (transaction_hash, log_index)) AS n FROM crash_test.stake_event",
  );
  expect(Number(distinct?.n)).toBe(total);
  const indexed = await ponderStakes(databaseUrl, "crash_test", chain.chainId);
  expect(indexed.size).toBe(developers.length);
  expect(indexed).toEqual(await chainStakes(chain, developers));
});

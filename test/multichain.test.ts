/** Two anvils with different chain ids, indexed by one Ponder app through CHAINS. */
import { afterAll, expect, it } from "vitest";
import {
  chainEnv,
  chainStakes,
  cleanup,
  freshDatabase,
  ponderStakes,
  startChain,
  startPonder,
  waitIndexedToHead,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

afterAll(cleanup);

it("indexes two chains together, keeping stakes per chain", async () => {
  const [a, b] = await Promise.all([startChain({ chainId: 31337 }), startChain({ chainId: 31338 })]);
  const shared = wallets(5, "both");
  await a.vault.fund(10n ** 12n);
  await b.vault.fund(10n ** 12n);
  await a.vault.stakeForMany(shared, [1n, 2n, 3n, 4n, 5n]);
  await b.vault.stakeForMany(shared.slice(0, 2), [10n, 20n]);
  await mine(a, 35); // chain a backfills; chain b's events arrive live
  const databaseUrl = await freshDatabase();
  const ponder = await startPonder({ ...chainEnv([a, b]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: "two_chains" });
  await ponder.waitReady();
  await b.vault.stakeFor(shared[4] as `0x${string}`, 50n);

  for (const chain of [a, b]) {
    await waitIndexedToHead(databaseUrl, "two_chains", chain);
    const indexed = await ponderStakes(databaseUrl, "two_chains", chain.chainId);
    expect(indexed).toEqual(await chainStakes(chain, indexed.keys()));
  }
  expect((await ponderStakes(databaseUrl, "two_chains", 31338)).size).toBe(3);

  const response = await fetch(`${ponder.url}/developers/${shared[0]}/stake`);
  expect(await response.json()).toMatchObject({
    total: "11",
    chains: [
      { chainId: 31337, amount: "1" },
      { chainId: 31338, amount: "10" },
    ],
  });
});

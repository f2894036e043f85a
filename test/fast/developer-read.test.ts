/**
 * GET /developers/:wallet answers what is durable: a step commits without waiting for the WAL
 * flush (step.ts, BEGIN_STEP), so a crash of PostgreSQL may take back its audit rows, and the
 * sequence's advance with them; an audit id a client saw would then come back on another row,
 * and a client paging with `?after=` would skip that row. The answer's own commit flushes the WAL
 * past every commit its reads saw (status.ts, DURABLE_READ), before it is sent. Other sessions
 * flush it too (the WAL writer, a synchronous commit elsewhere in the suite), so the test without
 * that rule fails only most of the time; with it, never.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPools } from "../../sidecar/db/pools";
import { createLogger } from "../../sidecar/log";
import { type Fake, fakePonder, sidecarParts, wallet } from "./ponder-fake";

let fake: Fake;
let pools: ReturnType<typeof createPools>;
beforeAll(async () => {
  fake = await fakePonder();
  pools = createPools(fake.config, createLogger("silent"));
});
afterAll(async () => {
  await Promise.all([pools?.pool.end(), pools?.httpPool.end(), pools?.confirmPool.end()]);
  await fake?.close();
});

it("sends a developer's audit rows only once the WAL holding them is flushed, though their step did not wait", async () => {
  const app = sidecarParts(fake.config).appOn(pools.httpPool);
  const w = wallet(0xb1);
  await fake.register(w, "someone@example.test");
  type Page = { audit: { id: string; to: { amount: string } }[] };
  for (const i of [1, 2, 3]) {
    await fake.index([{ developer: w, amount: BigInt(i) * 1_000_000n, block: 10 + i }], 12 + i);
    await fake.round(); // a step: its commit does not wait for the flush
    // Where the WAL ends once the step has committed: the answer holds the step's audit row.
    const { rows } = await pools.pool.query<{ end: string }>("SELECT pg_current_wal_insert_lsn()::text AS end");
    const page = (await (await app.request(`/developers/${w}`)).json()) as Page;
    expect(page.audit.map((a) => a.to.amount)).toContain(`${(i * (i + 1)) / 2}.000000`);
    const flushed = await pools.pool.query<{ past: boolean }>(
      "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS past",
      [rows[0]?.end],
    );
    expect(flushed.rows[0]?.past, `answer ${i} sent before the WAL holding it was flushed`).toBe(true);
  }
});

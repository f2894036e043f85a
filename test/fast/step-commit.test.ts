/**
 * A step's commit does not wait for the WAL flush (step.ts, BEGIN_STEP); no welcome email goes
 * out before a synchronous commit has flushed it: the outbox worker claims the job, before it
 * sends, in a commit of its own, which flushes the WAL up to it (pools.ts). So a PostgreSQL crash
 * may take back a step's commit whole, and its welcome job with it, but never the job of an
 * email sent.
 */
import type pg from "pg";
import { afterEach, expect, it } from "vitest";
import { createPools } from "../../sidecar/db/pools";
import { claimNextJob } from "../../sidecar/effects/outbox";
import { LEADER_LOCK } from "../../sidecar/leader";
import { createLogger } from "../../sidecar/log";
import { type Fake, fakePonder, USDC, wallet } from "./ponder-fake";

let fake: Fake;
let close = async () => {};
afterEach(async () => {
  await close();
  close = async () => {};
  await fake?.close();
});

/** The effects' pool, as the sidecar makes it. */
function effectsPool(on: Fake): pg.Pool {
  const pools = createPools(on.config, createLogger("silent"));
  close = async () => {
    await Promise.all([pools.pool.end(), pools.httpPool.end(), pools.confirmPool.end()]);
  };
  return pools.pool;
}

/** The effects' connections' synchronous_commit, and where it comes from. */
async function setting(pool: pg.Pool) {
  const { rows } = await pool.query("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'");
  return rows[0];
}

it("commits a step without waiting for the WAL flush, and claims its welcome job in a commit that waits, whatever the server's default", async () => {
  fake = await fakePonder();
  // The test cluster commits asynchronously throughout (ephemeral): the step's session as a
  // server's default has it, the worker's pool as the cluster's.
  await fake.db.query("SET synchronous_commit = on");
  // How each transaction that wrote a welcome job commits.
  await fake.db.query(`
    CREATE TABLE public.job_commits (id serial, op text, synchronous_commit text);
    CREATE FUNCTION public.note_job_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.job_commits (op, synchronous_commit) VALUES (TG_OP, current_setting('synchronous_commit')); RETURN NULL; END $$;
    CREATE TRIGGER note_job_commit AFTER INSERT OR UPDATE ON stakesync.outbox
      FOR EACH ROW EXECUTE FUNCTION public.note_job_commit()`);
  const w = wallet(0x5c);
  await fake.register(w, "dev@example.com");
  await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
  await fake.round();
  expect(await fake.developer(w)).toMatchObject({ status: "active" });

  // The worker's own pool, on a sidecar that leads; its session's setting, whatever a reload
  // of the server's configuration does later.
  const pool = effectsPool(fake);
  expect(await setting(pool)).toEqual({ setting: "on", source: "session" });
  const leader = await pool.connect();
  const { rows: led } = await leader.query<{ pid: number }>(
    "SELECT pg_backend_pid() AS pid FROM (SELECT pg_advisory_lock($1)) l",
    [LEADER_LOCK],
  );
  const fence = { workerId: "w", leaderPid: led[0]?.pid as number };
  const job = await claimNextJob(pool, fake.config.developersTable.sql, fence, false);
  leader.release();
  expect(job).toMatchObject({ wallet: w, email: "dev@example.com" });

  const { rows: commits } = await fake.db.query("SELECT op, synchronous_commit FROM public.job_commits ORDER BY id");
  expect(commits).toEqual([
    { op: "INSERT", synchronous_commit: "off" },
    { op: "UPDATE", synchronous_commit: "on" },
  ]);
});

it("keeps a server's default that waits for the flush, on the worker's connections", async () => {
  fake = await fakePonder();
  const { rows } = await fake.db.query<{ name: string }>("SELECT current_database() AS name");
  await fake.db.query(`ALTER DATABASE "${rows[0]?.name}" SET synchronous_commit = local`);
  expect(await setting(effectsPool(fake))).toEqual({ setting: "local", source: "session" });
});

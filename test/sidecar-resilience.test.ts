/**
 * The sidecar under process death: SIGKILL in the middle of a 10,000-developer sync, two
 * sidecars with the leader SIGKILLed, and an application table that predates stakesync.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../lib/wait";
import {
  chainEnv,
  cleanup,
  developer,
  freshDatabase,
  type PonderProcess,
  sql,
  startChain,
  startPonder,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { bulkStakes, mine, wallets } from "./helpers/workload";

afterAll(cleanup);

describe("SIGKILL during a large sync", () => {
  const SCHEMA = "kill_ponder";
  const developers = wallets(10_000, "kill");
  let chain: TestChain;
  let databaseUrl: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    chain = await startChain();
    await bulkStakes(chain, developers, 2); // 20,000 events
    await mine(chain, 40);
    databaseUrl = await freshDatabase();
    env = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: SCHEMA };
    const ponder = await startPonder(env);
    await ponder.waitReady();
    // The application registered everyone before the sidecar first ran.
    const first = await startSidecar(env);
    await first.stop();
    await sql(
      databaseUrl,
      "TRUNCATE stakesync.cursor, stakesync.chain_stake, stakesync.applied_event, stakesync.developer_queue",
    );
    await sql(
      databaseUrl,
      "INSERT INTO developers (wallet_address, email) SELECT w, 'd' || i || '@example.test' FROM unnest($1::text[]) WITH ORDINALITY AS t(w, i)",
      [developers],
    );
  });

  it("rolls back the killed transaction and ends exact, with no duplicated audit or job", async () => {
    const victim = await startSidecar(env);
    // Kill while the sync transaction is open (the first step applies all 20,000 events at once).
    await waitFor(
      "the sidecar's sync transaction",
      async () =>
        (
          await sql(
            databaseUrl,
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'stakesync_sidecar'
                AND datname = current_database() -- not a sidecar of a file running beside this one
                AND xact_start IS NOT NULL AND query NOT LIKE 'LISTEN%'`,
          )
        ).length > 0,
      { intervalMs: 5 },
    );
    await victim.kill();
    const [atKill] = await sql<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM stakesync.audit");
    expect(Number(atKill?.n)).toBe(0);

    const survivor = await startSidecar(env);
    await survivor.waitSynced(chain, databaseUrl, SCHEMA);
    const [counts] = await sql<Record<string, string>>(
      databaseUrl,
      `SELECT (SELECT count(*) FROM stakesync.audit) AS audit,
              (SELECT count(DISTINCT wallet) FROM stakesync.audit) AS audited_wallets,
              (SELECT count(*) FROM stakesync.outbox) AS jobs,
              (SELECT count(*) FROM developers WHERE status = 'active') AS active`,
    );
    expect(counts).toEqual({ audit: "10000", audited_wallets: "10000", jobs: "10000", active: "10000" });
    for (const wallet of [developers[0], developers[4321], developers[9999]] as `0x${string}`[]) {
      const raw = await chain.vault.stakeOf(wallet);
      expect((await developer(databaseUrl, wallet))?.stake_amount).toBe(
        `${raw / 1_000_000n}.${(raw % 1_000_000n).toString().padStart(6, "0")}`,
      );
    }
    const [sum] = await sql<{ total: string }>(databaseUrl, "SELECT sum(stake_amount)::text AS total FROM developers");
    const [ponderSum] = await sql<{ total: string }>(
      databaseUrl,
      `SELECT (sum(amount) / 1000000)::numeric(78, 6)::text AS total FROM ${SCHEMA}.developer_stake`,
    );
    expect(sum?.total).toBe(ponderSum?.total);
  });
});

describe("two sidecars", () => {
  const SCHEMA = "ha_ponder";
  let chain: TestChain;
  let databaseUrl: string;
  let env: Record<string, string>;
  let ponder: PonderProcess;

  beforeAll(async () => {
    chain = await startChain();
    await chain.vault.fund(10n ** 15n);
    databaseUrl = await freshDatabase();
    env = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: SCHEMA };
    ponder = await startPonder(env);
    await ponder.waitReady();
  });

  it("lets only the leader write, and the standby takes over within 15 s of a SIGKILL", async () => {
    const a = await startSidecar(env);
    await waitFor("a leads", async () => (await a.status()).role === "leader");
    const b = await startSidecar(env);
    await waitFor("b is up", async () => (await b.status()).role === "standby");
    const writers = await sql(
      databaseUrl,
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = 7263002
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(writers).toHaveLength(1);

    const team = wallets(10, "ha");
    await sql(databaseUrl, "INSERT INTO developers (wallet_address) SELECT unnest($1::text[])", [team]);
    await chain.vault.stakeForMany(
      team,
      team.map(() => 5_000_000n),
    );
    await mine(chain, 2);
    await a.waitSynced(chain, databaseUrl, SCHEMA);
    expect((await b.status()).role).toBe("standby");

    await a.kill();
    const killedAt = Date.now();
    await chain.vault.stakeForMany(
      team,
      team.map(() => 1_000_000n),
    ); // lands while nobody leads
    await mine(chain, 2);
    await waitFor("b to take over", async () => (await b.status()).role === "leader", { timeoutMs: 15_000 });
    const takeover = Date.now() - killedAt;
    expect(takeover).toBeLessThan(15_000);
    await b.waitSynced(chain, databaseUrl, SCHEMA);

    for (const wallet of team) expect((await developer(databaseUrl, wallet))?.stake_amount).toBe("6.000000");
    const perWallet = await sql<{ n: string }>(
      databaseUrl,
      "SELECT count(*) AS n FROM stakesync.audit GROUP BY wallet",
    );
    expect(perWallet.map((r) => r.n)).toEqual(team.map(() => "2")); // 0 → 5 → 6: nothing lost, nothing twice
    const [jobs] = await sql<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM stakesync.outbox");
    expect(jobs?.n).toBe("10");
  });
});

describe("an existing developers table", () => {
  it("keeps the application's columns, rows and values", async () => {
    const chain = await startChain();
    await chain.vault.fund(10n ** 15n);
    const databaseUrl = await freshDatabase();
    const [staker, bystander] = wallets(2, "existing") as [`0x${string}`, `0x${string}`];
    await sql(
      databaseUrl,
      `CREATE SCHEMA app;
       CREATE TABLE app.devs (
         wallet_address text UNIQUE NOT NULL, email text, name text NOT NULL, plan text DEFAULT 'free',
         created_at timestamptz NOT NULL DEFAULT '2020-01-01');
       INSERT INTO app.devs (wallet_address, email, name, plan) VALUES
         ('${staker}', 'a@example.test', 'Ada', 'pro'), ('${bystander}', NULL, 'Bob', 'free');`,
    );
    const env = {
      ...chainEnv([chain]),
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: "existing_ponder",
      DEVELOPERS_TABLE: "app.devs",
    };
    const ponder = await startPonder(env);
    await ponder.waitReady();
    const sidecar = await startSidecar(env);
    await chain.vault.stakeFor(staker, 2_500_000n);
    await mine(chain, 2);
    await sidecar.waitSynced(chain, databaseUrl, "existing_ponder");

    const rows = await sql<Record<string, unknown>>(
      databaseUrl,
      "SELECT wallet_address, name, plan, created_at, status, stake_amount::text FROM app.devs ORDER BY name",
    );
    expect(rows).toEqual([
      {
        wallet_address: staker,
        name: "Ada",
        plan: "pro",
        created_at: new Date("2020-01-01"),
        status: "active",
        stake_amount: "2.500000",
      },
      {
        wallet_address: bystander,
        name: "Bob",
        plan: "free",
        created_at: new Date("2020-01-01"),
        status: "pending",
        stake_amount: "0",
      },
    ]);
  });
});

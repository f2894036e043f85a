/**
 * The sidecar against real anvil, Ponder and PostgreSQL: confirmations, exact sums, status
 * transitions, MIN_STAKE, late registration, reorgs shallower and deeper than CONFIRMATIONS.
 * Two chains: 31337 for the activity, 31338 for a 2^256−1 stake (it overflows any other).
 */
import pg from "pg";
import { toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, vault } from "../lib/contracts";
import { waitFor } from "../lib/wait";
import {
  chainEnv,
  cleanup,
  developer,
  freshDatabase,
  type PonderProcess,
  type SidecarProcess,
  sql,
  startChain,
  startPonder,
  startSidecar,
  type TestChain,
  waitIndexedToHead,
} from "./helpers/stack";
import { anvilKeys, mine, wallets } from "./helpers/workload";

const USDC = 1_000_000n; // raw units per token (6 decimals)
const SCHEMA = "sidecar_ponder";

let a: TestChain;
let b: TestChain;
let databaseUrl: string;
let ponder: PonderProcess;
let sidecar: SidecarProcess;

beforeAll(async () => {
  [a, b] = await Promise.all([startChain({ chainId: 31337 }), startChain({ chainId: 31338 })]);
  await a.vault.fund(10n ** 15n);
  databaseUrl = await freshDatabase();
  const env = {
    ...chainEnv([a, b]),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: SCHEMA,
    CONFIRMATIONS: "2",
    MIN_STAKE: "10",
    RECONCILE_INTERVAL_MS: "1000",
  };
  ponder = await startPonder(env);
  await ponder.waitReady();
  sidecar = await startSidecar(env);
});
afterAll(cleanup);

const register = (wallet: string, email: string | null = null) =>
  sql(databaseUrl, "INSERT INTO developers (wallet_address, email) VALUES ($1, $2)", [wallet, email]);
const synced = () =>
  Promise.all([sidecar.waitSynced(a, databaseUrl, SCHEMA), sidecar.waitSynced(b, databaseUrl, SCHEMA)]);
const audit = (wallet: string) =>
  sql<{ old_status: string; new_status: string; new_amount: string; reason: string; block_number: string }>(
    databaseUrl,
    "SELECT old_status, new_status, new_amount::text, reason, block_number::text FROM stakesync.audit WHERE wallet = lower($1) ORDER BY id",
    [wallet],
  );

describe("sidecar sync", () => {
  it("activates exactly CONFIRMATIONS blocks after the stake, not one block before", async () => {
    const [wallet] = wallets(1, "confirm") as [`0x${string}`];
    await register(wallet);
    const receipt = await a.vault.stakeFor(wallet, 10n * USDC);
    const stakeBlock = Number(receipt.blockNumber);

    await mine(a, 1); // one confirmation
    await synced(); // everything confirmable is applied…
    expect((await developer(databaseUrl, wallet))?.status).toBe("pending"); // …and this is not yet

    await mine(a, 1); // the second confirmation
    await synced();
    const row = await developer(databaseUrl, wallet);
    expect(row).toMatchObject({ status: "active", stake_amount: "10.000000" });
    const block = await a.publicClient.getBlock({ blockNumber: BigInt(stakeBlock) });
    expect(row?.staked_at?.getTime()).toBe(Number(block.timestamp) * 1000);
    expect(await audit(wallet)).toEqual([
      {
        old_status: "pending",
        new_status: "active",
        new_amount: "10.000000",
        reason: "stake",
        block_number: String(stakeBlock),
      },
    ]);
  });

  it("sums stake, stakeFor, stakeForMany, unstake and slash; active → inactive → active; MIN_STAKE", async () => {
    const [key] = anvilKeys(3).slice(2) as [`0x${string}`];
    const self = vault(await connect(a.rpcUrl, key), a.deployment);
    const wallet = (await connect(a.rpcUrl, key)).wallet.account.address;
    await register(wallet.toUpperCase().replace("0X", "0x")); // mixed case in the table
    await self.fund(100n * USDC);

    await self.stake(4n * USDC);
    await a.vault.stakeFor(wallet, 3n * USDC);
    await mine(a, 2);
    await synced();
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "pending", stake_amount: "7.000000" }); // < MIN_STAKE

    const crossing = await a.vault.stakeForMany(
      [wallet, wallets(1, "other")[0] as `0x${string}`],
      [3n * USDC + 500_000n, 1n],
    );
    await mine(a, 2);
    await synced();
    const activated = await developer(databaseUrl, wallet);
    expect(activated).toMatchObject({ status: "active", stake_amount: "10.500000" });
    // Its first stake was below MIN_STAKE: staked_at is the block of the third, which crossed it.
    const crossed = await a.publicClient.getBlock({ blockNumber: crossing.blockNumber });
    expect(activated?.staked_at?.getTime()).toBe(Number(crossed.timestamp) * 1000);

    await self.unstake(600_000n); // 9.9 < MIN_STAKE
    await mine(a, 2);
    await synced();
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "inactive", stake_amount: "9.900000" });

    await self.stake(5n * USDC);
    await a.vault.slash(wallet, 2n * USDC); // 12.9
    await mine(a, 2);
    await synced();
    const again = await developer(databaseUrl, wallet);
    expect(again).toMatchObject({ status: "active", stake_amount: "12.900000" });
    expect(again?.staked_at).toEqual(activated?.staked_at); // the first activation's time stays
    expect(await a.vault.stakeOf(wallet)).toBe(12_900_000n);
    // Each block's events are applied as they are confirmed; the status changes are these three.
    const transitions = (await audit(wallet)).filter((r) => r.old_status !== r.new_status);
    expect(transitions.map((r) => `${r.old_status}→${r.new_status}`)).toEqual([
      "pending→active",
      "active→inactive",
      "inactive→active",
    ]);
    expect(transitions[0]?.new_amount).toBe("10.500000");
  });

  it("keeps 2^256−1 raw units exact and sums stakes over chains", async () => {
    const [wallet] = wallets(1, "huge") as [`0x${string}`];
    const max = 2n ** 256n - 1n;
    await register(wallet);
    await b.vault.fund(max);
    await b.vault.stakeFor(wallet, max);
    await a.vault.stakeFor(wallet, 1n);
    await Promise.all([mine(a, 2), mine(b, 2)]);
    await synced();
    const raw = max + 1n; // summed over both chains: beyond uint256, still exact
    const expected = `${raw / USDC}.${(raw % USDC).toString().padStart(6, "0")}`;
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "active", stake_amount: expected });
    const view = (await (await fetch(`${sidecar.url}/developers/${wallet}`)).json()) as { chains: unknown[] };
    expect(view.chains).toEqual([
      { chainId: 31337, amount: "1", lastBlock: expect.any(Number) },
      { chainId: 31338, amount: max.toString(), lastBlock: expect.any(Number) },
    ]);
  });

  it("applies a stake made before signup once the row appears (reconcile)", async () => {
    const [wallet] = wallets(1, "late-signup") as [`0x${string}`];
    const receipt = await a.vault.stakeFor(wallet, 20n * USDC);
    await mine(a, 2);
    await synced();
    expect(await developer(databaseUrl, wallet)).toBeUndefined();
    await register(wallet);
    await waitFor(
      "late registration applied",
      async () => (await developer(databaseUrl, wallet))?.status === "active",
      {
        timeoutMs: 10_000,
      },
    );
    const block = await a.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    expect((await developer(databaseUrl, wallet))?.staked_at?.getTime()).toBe(Number(block.timestamp) * 1000);
    expect((await audit(wallet)).map((r) => r.reason)).toEqual(["registered"]);
  });

  it("never applies a stake orphaned by a reorg shallower than CONFIRMATIONS", async () => {
    const [wallet] = wallets(1, "shallow") as [`0x${string}`];
    await register(wallet);
    const snapshot = await a.publicClient.request({ method: "evm_snapshot" as never });
    await a.vault.stakeFor(wallet, 50n * USDC); // 0 confirmations
    await waitIndexedToHead(databaseUrl, SCHEMA, a); // Ponder has it…
    await a.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
    await mine(a, 4); // …then it is orphaned by a longer fork
    await synced();
    await waitFor("Ponder to drop the orphan", async () => {
      const rows = await sql(databaseUrl, `SELECT 1 FROM ${SCHEMA}.stake_event WHERE developer = $1`, [wallet]);
      return rows.length === 0;
    });
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "pending", stake_amount: "0" });
    expect(await audit(wallet)).toEqual([]);
  });

  it("waits behind a reorg's locks instead of deadlocking with Ponder", async () => {
    // Ponder undoes a reorg in one transaction that locks stake_event, then _ponder_checkpoint.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query("BEGIN");
      await db.query("SET LOCAL lock_timeout = '5s'");
      await db.query(`LOCK TABLE ${SCHEMA}.stake_event IN ACCESS EXCLUSIVE MODE`);
      const pid = (await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      await waitFor("a sync step to wait for stake_event", async () => {
        // The leader's session, waiting for this one's lock. (Its LOCK goes to the server with the
        // step's BEGIN and temp tables, past the 1 kB of query text pg_stat_activity keeps.)
        const waiting = await sql(
          databaseUrl,
          `SELECT 1 FROM pg_stat_activity
            WHERE application_name = 'stakesync_sidecar' AND wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid))`,
          [pid],
        );
        return waiting.length > 0;
      });
      // The waiting step holds nothing of Ponder's: the reorg's second lock is granted at once.
      await db.query(`LOCK TABLE ${SCHEMA}._ponder_checkpoint IN ACCESS EXCLUSIVE MODE`);
      await db.query("COMMIT");
    } finally {
      await db.end();
    }
    const [wallet] = wallets(1, "after-lock") as [`0x${string}`];
    await register(wallet);
    await a.vault.stakeFor(wallet, 11n * USDC);
    await mine(a, 2);
    await synced();
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "active", stake_amount: "11.000000" });
  });

  it("corrects a stake orphaned by a reorg deeper than CONFIRMATIONS, audited as reorg", async () => {
    const [wallet] = wallets(1, "deep") as [`0x${string}`];
    await register(wallet);
    const snapshot = await a.publicClient.request({ method: "evm_snapshot" as never });
    await a.vault.stakeFor(wallet, 30n * USDC);
    await mine(a, 3);
    await synced();
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "active", stake_amount: "30.000000" });

    await a.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
    await a.vault.stakeFor(wallet, 12n * USDC); // the new fork has a smaller stake
    await mine(a, 6);
    // A removal is applied once Ponder commits a block after it: this test chain only moves when told.
    await waitFor(
      "the correction",
      async () => {
        await mine(a, 1);
        return (await developer(databaseUrl, wallet))?.stake_amount === "12.000000";
      },
      { intervalMs: 500 },
    );
    expect(await developer(databaseUrl, wallet)).toMatchObject({ status: "active" });
    // Corrected as the new fork is confirmed: the orphan taken back (0, the chain before the
    // snapshot) once Ponder has two checkpoints on the new fork, unless the new fork's stake is
    // confirmed by then too; never both forks' stakes together (42).
    const trail = (await audit(wallet)).map((r) => `${r.reason} ${r.new_amount}`);
    expect([
      ["stake 30.000000", "reorg 12.000000"],
      ["stake 30.000000", "reorg 0.000000", "reorg 12.000000"],
    ]).toContainEqual(trail);
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    expect(metrics).toMatch(/^stakesync_reorg_corrections_total [1-9]/m);
  });

  it("ends equal to stakeOf() for every wallet, with one welcome job per activated developer", async () => {
    await synced();
    const rows = await sql<{ wallet: string; chain_id: number; amount: string }>(
      databaseUrl,
      "SELECT wallet, chain_id, amount::text FROM stakesync.chain_stake",
    );
    for (const row of rows) {
      const chain = row.chain_id === a.chainId ? a : b;
      expect([row.wallet, BigInt(row.amount)]).toEqual([
        row.wallet,
        await chain.vault.stakeOf(row.wallet as `0x${string}`),
      ]);
    }
    const [jobs] = await sql<{ jobs: string; activated: string }>(
      databaseUrl,
      `SELECT (SELECT count(*) FROM stakesync.outbox) AS jobs,
              (SELECT count(DISTINCT wallet) FROM stakesync.audit WHERE new_status = 'active') AS activated`,
    );
    expect(jobs?.jobs).toBe(jobs?.activated);
  });

  it("serves health, readiness, status, metrics and developers without emails", async () => {
    const [wallet] = wallets(1, "privacy") as [`0x${string}`];
    await register(wallet, "secret-person@example.test");
    await a.vault.stakeFor(wallet, 11n * USDC);
    await mine(a, 2);
    await synced();
    expect((await fetch(`${sidecar.url}/health`)).status).toBe(200);
    expect((await fetch(`${sidecar.url}/ready`)).status).toBe(200);
    const status = await sidecar.status();
    expect(status.role).toBe("leader");
    expect(status.chains.map((c) => c.chainId)).toEqual([31337, 31338]);
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    for (const name of ["stakesync_events_synced_total", "stakesync_last_synced_block", "stakesync_is_leader 1"]) {
      expect(metrics).toContain(name);
    }
    const view = await fetch(`${sidecar.url}/developers/${wallet}`);
    const body = await view.text();
    expect(JSON.parse(body)).toMatchObject({ status: "active", stakeAmount: "11.000000", registered: true });
    expect(body).not.toContain("@");
    // The audit trail comes in pages.
    await a.vault.stakeFor(wallet, USDC);
    await mine(a, 2);
    await synced();
    type Page = { audit: { id: string; to: { amount: string } }[]; nextAfter: string | null };
    const first = (await (await fetch(`${sidecar.url}/developers/${wallet}?limit=1`)).json()) as Page;
    expect(first.audit.map((r) => r.to.amount)).toEqual(["11.000000"]);
    expect(first.nextAfter).toBe(first.audit[0]?.id);
    const second = (await (
      await fetch(`${sidecar.url}/developers/${wallet}?limit=1&after=${first.nextAfter}`)
    ).json()) as Page;
    expect(second.audit.map((r) => r.to.amount)).toEqual(["12.000000"]);
    expect(second.nextAfter).toBeNull();
    expect((await fetch(`${sidecar.url}/developers/${wallet}?limit=0`)).status).toBe(400);
    expect((await fetch(`${sidecar.url}/developers/${wallet}?after=x`)).status).toBe(400);
    expect((await fetch(`${sidecar.url}/developers/0xnothex`)).status).toBe(400);
    expect((await fetch(`${sidecar.url}/developers/${toHex(1, { size: 20 })}`)).status).toBe(404);
    expect(sidecar.output()).not.toContain("secret-person");
    // No ADMIN_TOKEN configured here: the admin routes do not exist.
    expect((await fetch(`${sidecar.url}/admin/dead-letters`)).status).toBe(404);
    expect((await fetch(`${sidecar.url}/admin/reconcile`, { method: "POST" })).status).toBe(404);
  });
});

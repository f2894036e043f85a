/**
 * Operator experience: the status page in a real browser, `stakesync verify` against the chain,
 * a zero-downtime redeploy through a views schema, and the least-privilege roles of the guide.
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../lib/config";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { signedAmount } from "../sidecar/sync/sql/fragments";
import { checkpoint } from "./fast/ponder-fake";
import {
  chainEnv,
  cleanup,
  developer,
  freshDatabase,
  type PonderProcess,
  run,
  sql,
  startChain,
  startPonder,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { bulkStakes, mine, wallets } from "./helpers/workload";

afterAll(cleanup);

const artifacts = path.join(repoRoot, "test-artifacts");

describe("status page in Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    });
  });
  afterAll(async () => browser?.close());

  it("moves its progress bar during a backfill, then shows a stake's change, the numbers of /status, and no wrapped hash at 1280 px", async () => {
    const chain = await startChain();
    await bulkStakes(chain, wallets(1000, "page-bulk"), 20); // a backfill long enough to watch
    await mine(chain, 40);
    const databaseUrl = await freshDatabase();
    const ponderPort = await freePort();
    const env = {
      ...chainEnv([chain]),
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: "page_ponder",
      EXPLORER_URL: "https://explorer.example",
      PONDER_URL: `http://127.0.0.1:${ponderPort}`,
    };
    const sidecar = await startSidecar(env);
    // Held still: the page's own reload every 3 s raced the test's next page.goto (Playwright:
    // "navigation interrupted by another navigation") and could land in the middle of a check.
    const still = `${sidecar.url}/?refresh=0`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const indexedProgress = async () => {
      await page.goto(still);
      return Number(
        (await page.locator(`tr[data-chain="${chain.chainId}"] progress.indexed-bar`).getAttribute("value")) ?? -1,
      );
    };
    expect(await indexedProgress()).toBe(0); // no Ponder yet: nothing indexed
    // Waiting for Ponder's tables is how every deploy starts, not an error.
    expect(await sidecar.status()).toMatchObject({ consecutiveErrors: 0, lastError: null });

    const ponder = await startPonder(env, ponderPort);
    const seen = new Set<number>();
    while (
      !(await fetch(`${ponder.url}/ready`)
        .then((r) => r.ok)
        .catch(() => false))
    ) {
      const value = await indexedProgress().catch(() => -1);
      if (value > 0 && value < 1) seen.add(value);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen.size).toBeGreaterThanOrEqual(2); // the bar moved while Ponder backfilled

    const [wallet] = wallets(1, "page-dev") as [`0x${string}`];
    await sql(databaseUrl, "INSERT INTO developers (wallet_address, email) VALUES ($1, 'page-person@example.test')", [
      wallet,
    ]);
    const receipt = await chain.vault.stakeFor(wallet, 4_200_000n);
    await mine(chain, 2);
    await sidecar.waitSynced(chain, databaseUrl, "page_ponder");
    const synced = (await sidecar.status()).chains[0]?.synced;

    await page.goto(still);
    const row = page.locator(`#changes tr[data-wallet="${wallet}"]`);
    await expect(row.textContent()).resolves.toContain("pending 0 → active 4.200000");
    expect(await row.textContent()).toContain(`${chain.chainId} · ${receipt.blockNumber}`);
    expect(await row.locator("a").getAttribute("href")).toBe(`https://explorer.example/tx/${receipt.transactionHash}`);
    expect(await page.locator(`tr[data-chain="${chain.chainId}"] td.synced`).textContent()).toContain(String(synced));
    expect(await page.content()).not.toContain("@example.test");

    // Live, the page shows the numbers /status has: no progress bars, lag in blocks, counts by status.
    type Status = {
      chains: { head: number; indexed: number; synced: number; lagBlocks: number }[];
      developers: { byStatus: Record<string, number> };
    };
    let status: Status | undefined;
    // Counts are kept for a few seconds; wait for the one that includes the activation.
    await waitFor("developers counted active", async () => {
      status = (await (await fetch(`${sidecar.url}/status`)).json()) as Status;
      return status.developers.byStatus.active === 1;
    });
    if (!status) throw new Error("no status");
    const [live] = status.chains as [(typeof status.chains)[0]];
    await page.goto(still);
    const chainRow = page.locator(`tr[data-chain="${chain.chainId}"]`);
    const cell = async (name: string) => (await chainRow.locator(`td.${name}`).textContent())?.trim();
    expect(Number(await cell("head"))).toBe(live.head);
    expect(Number(await cell("indexed"))).toBe(live.indexed);
    expect(live.head).toBeGreaterThanOrEqual(live.indexed);
    expect(await cell("lag")).toMatch(new RegExp(`^${live.lagBlocks} blocks? \\(`));
    expect(await page.locator("progress").count()).toBe(0);
    expect(status.developers.byStatus).toEqual({ active: 1 });
    expect(await page.locator('#developer-counts [data-status="active"]').textContent()).toBe("active 1");
    // Wallets, hashes, times and blocks stay on one line at 1280 px.
    // (A string: the type-checker knows Node's globals, not the browser's.)
    const lines =
      (await page.evaluate(`[...document.querySelectorAll("#changes td, #chains td, #last-sync")].map((element) => {
      const range = document.createRange();
      range.selectNodeContents(element);
      return { text: element.textContent, lines: new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size };
    })`)) as { text: string; lines: number }[];
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.filter((l) => l.lines > 1)).toEqual([]);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "status-page.png"), fullPage: true });
  });
});

describe("stakesync verify", () => {
  let chain: TestChain;
  let env: Record<string, string>;
  let databaseUrl: string;
  let ponder: PonderProcess;
  const verify = async (extra: Record<string, string> = {}, args: string[] = []) => {
    const proc = run(process.execPath, [path.join(repoRoot, "bin", "stakesync.js"), "verify", ...args], {
      ...env,
      ...extra,
    });
    return { code: await proc.exited, output: proc.output() };
  };

  beforeAll(async () => {
    chain = await startChain();
    databaseUrl = await freshDatabase();
    env = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: "verify_ponder" };
    const team = wallets(20, "verify");
    ponder = await startPonder(env);
    await ponder.waitReady();
    const sidecar = await startSidecar(env);
    await sql(databaseUrl, "INSERT INTO developers (wallet_address) SELECT unnest($1::text[])", [team.slice(0, 15)]);
    await bulkStakes(chain, team, 2);
    await chain.vault.slash(team[0] as `0x${string}`, 10_000n);
    await mine(chain, 2);
    await sidecar.waitSynced(chain, databaseUrl, "verify_ponder");
  });

  it("exits 0 when developers and Ponder match the chain", async () => {
    const { code, output } = await verify();
    expect(output).toMatch(/^OK: 20 wallets on 1 chain\(s\)/m);
    expect(code).toBe(0);
    const json = await verify({}, ["--json"]);
    expect(JSON.parse(json.output)).toMatchObject({ ok: true, wallets: 20, mismatches: [] });
  });

  it("exits 1 and reports a row changed by hand with expected and found values", async () => {
    const [wallet] = wallets(1, "verify");
    const before = await developer(databaseUrl, wallet as string);
    await sql(databaseUrl, "UPDATE developers SET stake_amount = 1 WHERE wallet_address = $1", [wallet]);
    const { code, output } = await verify();
    expect(code).toBe(1);
    expect(output).toContain(
      `MISMATCH developers ${wallet} chain all stake: expected ${before?.stake_amount}, found 1`,
    );
    const json = JSON.parse((await verify({}, ["--json"])).output);
    expect(json.mismatches).toEqual([
      { table: "developers", wallet, chainId: "all", field: "stake", expected: before?.stake_amount, found: "1" },
    ]);
    await sql(databaseUrl, "UPDATE developers SET stake_amount = $2 WHERE wallet_address = $1", [
      wallet,
      before?.stake_amount,
    ]);
  });

  it("reports a malformed wallet row as a mismatch line and verifies the others", async () => {
    await sql(databaseUrl, "INSERT INTO developers (wallet_address) VALUES ('not-a-wallet')");
    try {
      const { code, output } = await verify();
      expect(code).toBe(1);
      expect(output).toContain(
        'MISMATCH developers not-a-wallet chain all wallet_address: expected 0x followed by 40 hex digits, found "not-a-wallet"',
      );
      expect(output.match(/^MISMATCH/gm)).toHaveLength(1);
    } finally {
      await sql(databaseUrl, "DELETE FROM developers WHERE wallet_address = 'not-a-wallet'");
    }
  });

  it("reports a NULL, NaN or negated stake_amount (an adopted table's column may hold them) as a mismatch, not a crash nor OK", async () => {
    const [wallet] = wallets(1, "verify");
    const before = await developer(databaseUrl, wallet as string);
    await sql(databaseUrl, "ALTER TABLE developers ALTER COLUMN stake_amount DROP NOT NULL");
    try {
      for (const [value, shown] of [
        [null, "null"],
        ["NaN", "NaN"],
        [`-${before?.stake_amount}`, `-${before?.stake_amount}`],
      ] as const) {
        await sql(databaseUrl, "UPDATE developers SET stake_amount = $2::numeric WHERE wallet_address = $1", [
          wallet,
          value,
        ]);
        const { code, output } = await verify();
        expect(output).toContain(
          `MISMATCH developers ${wallet} chain all stake: expected ${before?.stake_amount}, found ${shown}`,
        );
        expect(code).toBe(1);
      }
    } finally {
      await sql(databaseUrl, "UPDATE developers SET stake_amount = $2 WHERE wallet_address = $1", [
        wallet,
        before?.stake_amount,
      ]);
      await sql(databaseUrl, "ALTER TABLE developers ALTER COLUMN stake_amount SET NOT NULL");
    }
  });

  it("exits 1 when Ponder's running sum (developer_stake, which GraphQL serves) differs from its events", async () => {
    const [wallet] = wallets(1, "verify");
    const table = '"verify_ponder".developer_stake';
    const [row] = await sql<{ amount: string }>(databaseUrl, `SELECT amount::text FROM ${table} WHERE developer = $1`, [
      wallet,
    ]);
    // By hand, past Ponder's triggers (its live queries' own, which need its session's tables).
    const byHand = (set: string) =>
      sql(
        databaseUrl,
        `SET session_replication_role = replica; UPDATE ${table} SET ${set} WHERE developer = '${wallet}'`,
      );
    await byHand("amount = amount + 1");
    try {
      const { code, output } = await verify();
      expect(output).toContain(
        `MISMATCH ponder ${wallet} chain 31337 developer_stake: expected ${row?.amount}, found ${BigInt(row?.amount ?? 0) + 1n}`,
      );
      expect(output.match(/^MISMATCH/gm)).toHaveLength(1);
      expect(code).toBe(1);
    } finally {
      await byHand(`amount = ${row?.amount}`);
    }
  });

  it("exits 2 with a clear message when the RPC is unreachable", async () => {
    const { code, output } = await verify({ RPC_URL: "http://127.0.0.1:9" });
    expect(code).toBe(2);
    expect(output).toContain("stakesync verify: cannot read stakeOf() on chain 31337 (127.0.0.1:9)");
  });

  // Last: it leaves Ponder stopped in the middle of its crash recovery.
  it("says Ponder's events were not compared while Ponder re-indexes below the cursor, and judges developers: exit 0, not a mismatch per staker", async () => {
    const schema = '"verify_ponder"';
    const [{ cursor } = { cursor: "0" }] = await sql<{ cursor: string }>(
      databaseUrl,
      "SELECT block::text AS cursor FROM stakesync.cursor",
    );
    const [{ first } = { first: 0 }] = await sql<{ first: number }>(
      databaseUrl,
      `SELECT min(block_number)::int AS first FROM ${schema}.stake_event`,
    );
    // What every \`ponder start\` on an existing schema does first (see README "Crash recovery"):
    // rows above its safe block deleted, its running sums with them, not ready. Here with Ponder
    // stopped there, as a restart on a slow RPC leaves it for minutes.
    await ponder.stop();
    await sql(
      databaseUrl,
      `SET session_replication_role = replica;
       DELETE FROM ${schema}.stake_event WHERE block_number > ${first};
       UPDATE ${schema}.developer_stake s SET amount = coalesce((SELECT sum(${signedAmount("e")}) FROM ${schema}.stake_event e
                                                          WHERE e.chain_id = s.chain_id AND e.developer = s.developer), 0);
       UPDATE ${schema}._ponder_checkpoint SET safe_checkpoint = '${checkpoint(first)}';
       UPDATE ${schema}._ponder_meta SET value = jsonb_set(value, '{is_ready}', '0') WHERE key = 'app'`,
    );
    expect(first).toBeLessThan(Number(cursor));
    const { code, output } = await verify();
    // Before: a "MISMATCH ponder" line for every staker above that block, "FAILED", exit 1.
    expect(output).not.toMatch(/^MISMATCH/m);
    expect(output).toMatch(
      new RegExp(
        `^OK: 20 wallets on 1 chain\\(s\\) at 31337@${cursor}: 0 mismatch\\(es\\); Ponder's events not compared on chain\\(s\\) 31337 \\(indexed below the cursor\\)`,
        "m",
      ),
    );
    expect(output).toContain(
      `chain 31337: Ponder has indexed it only to block ${first - 1}, below the sidecar's ${cursor}`,
    );
    expect(code).toBe(0);
  });
});

describe("zero-downtime redeploy through a views schema", () => {
  it("switches Ponder deployments under a running sidecar without undoing or repeating anything", async () => {
    const chain = await startChain();
    await chain.vault.fund(10n ** 15n);
    const databaseUrl = await freshDatabase();
    const base = {
      ...chainEnv([chain]),
      DATABASE_URL: databaseUrl,
      PONDER_VIEWS_SCHEMA: "live",
    };
    const token = "redeploy-admin-token-123";
    // The production way: `npm run start:indexer` passes --views-schema from PONDER_VIEWS_SCHEMA.
    const deploy = async (schema: string) =>
      run(process.execPath, ["--import", "tsx", "scripts/start.ts", "indexer"], {
        ...base,
        DATABASE_SCHEMA: schema,
        PONDER_PORT: String(await freePort()),
      });
    await deploy("deploy_v1");
    const sidecar = await startSidecar({ ...base, DATABASE_SCHEMA: "deploy_v1", ADMIN_TOKEN: token });
    await waitFor(
      "views of v1",
      async () => (await sql(databaseUrl, "SELECT 1 FROM pg_views WHERE schemaname = 'live'")).length > 0,
      {
        timeoutMs: 60_000,
      },
    );

    const team = wallets(5, "redeploy");
    await sql(
      databaseUrl,
      "INSERT INTO developers (wallet_address, email) SELECT w, 'r' || i || '@example.test' FROM unnest($1::text[]) WITH ORDINALITY AS t(w, i)",
      [team],
    );
    await chain.vault.stakeForMany(
      team,
      team.map(() => 2_000_000n),
    );
    await mine(chain, 2);
    await sidecar.waitSynced(chain, databaseUrl, "live");
    const snapshot = async () =>
      sql(
        databaseUrl,
        `SELECT (SELECT count(*) FROM stakesync.audit) AS audit, (SELECT count(*) FROM stakesync.outbox) AS jobs,
                (SELECT string_agg(wallet_address || status || stake_amount, ',' ORDER BY wallet_address) FROM developers) AS rows`,
      );
    const before = await snapshot();

    // Deployment v2 indexes into its own schema and takes over the views when it is ready.
    await deploy("deploy_v2");
    await waitFor(
      "the views to point at v2",
      async () =>
        (await sql(databaseUrl, "SELECT 1 FROM pg_views WHERE schemaname = 'live' AND definition LIKE '%deploy_v2%'"))
          .length > 0,
      { timeoutMs: 60_000 },
    );
    await mine(chain, 2);
    await sidecar.waitSynced(chain, databaseUrl, "live");
    const reconcile = await fetch(`${sidecar.url}/admin/reconcile`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await reconcile.json()).toMatchObject({ drifted: 0, changed: 0 });
    expect(await snapshot()).toEqual(before);

    await chain.vault.stakeFor(team[0] as `0x${string}`, 1_000_000n); // and it keeps syncing through v2
    await mine(chain, 2);
    await waitFor(
      "a stake through v2",
      async () => (await developer(databaseUrl, team[0] as string))?.stake_amount === "3.000000",
    );
  });
});

describe("least-privilege roles from docs/sql/roles.sql", () => {
  it("runs the sidecar under its grants, and a write outside them fails", async () => {
    const chain = await startChain();
    await chain.vault.fund(10n ** 15n);
    const adminUrl = await freshDatabase();
    await sql(adminUrl, readFileSync(path.join(repoRoot, "docs", "sql", "roles.sql"), "utf8")).catch(async (error) => {
      // Roles are cluster-wide: another run of this test may have created them already.
      if (!/already exists/.test(String(error))) throw error;
      const grants = readFileSync(path.join(repoRoot, "docs", "sql", "roles.sql"), "utf8").replace(
        /CREATE ROLE [^;]+;/g,
        "",
      );
      await sql(adminUrl, grants);
    });
    await sql(
      adminUrl,
      "ALTER ROLE stakesync_indexer PASSWORD 'indexer-pw'; ALTER ROLE stakesync_sidecar PASSWORD 'sidecar-pw'",
    );
    const as = (role: string, pw: string) => adminUrl.replace("postgres:postgres@", `${role}:${pw}@`);
    const indexerUrl = as("stakesync_indexer", "indexer-pw");
    const sidecarUrl = as("stakesync_sidecar", "sidecar-pw");
    const env = { ...chainEnv([chain]), DATABASE_SCHEMA: "priv_ponder" };

    const ponder = await startPonder({ ...env, DATABASE_URL: indexerUrl });
    await ponder.waitReady();
    const sidecar = await startSidecar({ ...env, DATABASE_URL: sidecarUrl });
    const [wallet] = wallets(1, "least-privilege") as [`0x${string}`];
    await sql(adminUrl, "INSERT INTO developers (wallet_address, email) VALUES ($1, 'lp@example.test')", [wallet]);
    await chain.vault.stakeFor(wallet, 7_000_000n);
    await mine(chain, 2);
    await sidecar.waitSynced(chain, sidecarUrl, "priv_ponder");
    expect(await developer(adminUrl, wallet)).toMatchObject({ status: "active", stake_amount: "7.000000" });
    // Its grants let it make Ponder's commits durable (durable-ponder.ts), and Ponder's role,
    // with no privilege on schema stakesync, indexes on through the trigger.
    const [durable] = await sql<{ n: number }>(
      adminUrl,
      "SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'priv_ponder.stake_event'::regclass AND tgname = 'stakesync_durable_commit'",
    );
    expect(durable?.n).toBe(1);
    await chain.vault.stakeFor(wallet, 3_000_000n);
    await mine(chain, 2);
    await waitFor(
      "the second stake synced",
      async () => (await developer(adminUrl, wallet))?.stake_amount === "10.000000",
    );
    // The developer's read needs EXECUTE on pg_logical_emit_message under the role, checked whether
    // or not it writes the message (granted to PUBLIC).
    const view = await fetch(`${sidecar.url}/developers/${wallet}`);
    expect(view.status).toBe(200);
    expect(await view.json()).toMatchObject({
      status: "active",
      audit: [{ to: { amount: "7.000000" } }, { to: { amount: "10.000000" } }],
    });

    for (const statement of [
      "INSERT INTO priv_ponder.stake_event (id) VALUES ('x')",
      "UPDATE developers SET email = 'hijack@example.test'",
      "DELETE FROM developers",
      "CREATE TABLE public.sidecar_was_here (x int)",
      "DROP TABLE priv_ponder.developer_stake",
    ]) {
      await expect(sql(sidecarUrl, statement), statement).rejects.toThrow(/permission denied|must be owner/);
    }
  });
});

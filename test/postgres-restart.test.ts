/**
 * PostgreSQL restarted under a running sidecar: it waits, counts the errors, pages the outage, and
 * carries on by itself. And PostgreSQL crashed right after a welcome email: the developer is
 * welcomed once, and the rows come back as the chain has them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { type LocalPostgres, startPostgres } from "../lib/local/postgres";
import { startSidecar as startLocalSidecar } from "../lib/local/stack";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { startSmtp, startWebhook } from "./helpers/peers";
import {
  chainEnv,
  cleanup,
  developer,
  spawnForTest,
  sql,
  startChain,
  startPonder,
  startSidecar,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

let postgres: LocalPostgres | undefined;
let crashedPostgres: LocalPostgres | undefined;
const dir = mkdtempSync(path.join(tmpdir(), "stakesync-pg-restart-"));
afterAll(async () => {
  await cleanup();
  await postgres?.stop();
  await crashedPostgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("recovers from a PostgreSQL restart without restarting itself", async () => {
  const port = await freePort();
  const start = () => startPostgres({ dataDir: path.join(dir, "data"), port, database: "restart", ephemeral: true });
  postgres = await start();
  const chain = await startChain();
  await chain.vault.fund(10n ** 15n);
  const env = {
    ...chainEnv([chain]),
    DATABASE_URL: postgres.url,
    DATABASE_SCHEMA: "restart_ponder",
  };
  const ponder = await startPonder(env);
  await ponder.waitReady();
  const [webhook, lateWebhook] = await Promise.all([startWebhook(), startWebhook()]);
  const paging = { ALERT_AFTER_ERRORS: "2", RETRY_DELAY_MS: "200" };
  const sidecar = await startSidecar({ ...env, ...paging, ALERT_WEBHOOK_URL: webhook.url });
  const [before, after] = wallets(2, "restart") as [`0x${string}`, `0x${string}`];
  await sql(postgres.url, "INSERT INTO developers (wallet_address) VALUES ($1), ($2)", [before, after]);
  await chain.vault.stakeFor(before, 1_000_000n);
  await mine(chain, 2);
  await sidecar.waitSynced(chain, postgres.url, "restart_ponder");

  const stoppedAt = Date.now();
  await postgres.stop();
  // No sidecar can lead, so none evaluates the rules: each pages the outage itself.
  const paged = (hook: typeof webhook, state: string) =>
    hook.alerts.some((a) => a.rule === "database_unreachable" && a.state === state && Date.parse(a.at) >= stoppedAt);
  await waitFor("database_unreachable paged", () => paged(webhook, "firing"), { timeoutMs: 60_000 });
  expect(webhook.alerts.find((a) => a.rule === "database_unreachable")).toMatchObject({
    severity: "critical",
    text: expect.stringMatching(/^database unreachable from sidecar [^ ]+:\d+ \(\d+ tries in a row\)/),
  });
  // A sidecar started during the outage (it waits to prepare its database) pages it too.
  const late = await startLocalSidecar(
    { ...env, ...paging, ALERT_WEBHOOK_URL: lateWebhook.url },
    { port: await freePort(), spawn: spawnForTest },
  );
  await waitFor("the late sidecar's page", () => paged(lateWebhook, "firing"), { timeoutMs: 60_000 });
  expect((await fetch(`${sidecar.url}/health`)).status).toBe(200); // alive, and says what is wrong:
  const ready = await fetch(`${sidecar.url}/ready`);
  expect(ready.status).toBe(503);
  expect(await ready.json()).toMatchObject({ ready: false, reason: expect.stringContaining("database") });
  await chain.vault.stakeFor(after, 2_000_000n); // happens during the outage
  postgres = await start();

  // Ponder may exit when its database vanishes; an orchestrator would restart it, so do we.
  const indexer = ponder.process.exitCode === null ? ponder : await startPonder(env);
  await indexer.waitReady();
  await mine(chain, 2);
  await sidecar.waitSynced(chain, postgres.url, "restart_ponder");
  expect(await developer(postgres.url, after)).toMatchObject({ status: "active", stake_amount: "2.000000" });
  expect(await developer(postgres.url, before)).toMatchObject({ status: "active", stake_amount: "1.000000" });
  expect(sidecar.process.exitCode).toBeNull(); // the same process throughout
  const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
  expect(metrics).toMatch(/stakesync_sync_errors_total\{kind="database"\} [1-9]/);
  await waitFor("ready again", async () => (await fetch(`${sidecar.url}/ready`)).status === 200);
  // Resolved by each, once it reached the database again.
  await waitFor("both pages resolved", () => paged(webhook, "resolved") && paged(lateWebhook, "resolved"), {
    timeoutMs: 60_000,
  });
  webhook.close();
  lateWebhook.close();
  expect(late.process.exitCode).toBeNull();
});

it("welcomes a developer once across a crash of PostgreSQL right after the email, and syncs on", async () => {
  // Durable, as a production server: fsync and synchronous commits on, so that what a crash keeps
  // is what such a server keeps (a step's commit does not wait for the flush; the worker's claim does).
  const dataDir = path.join(dir, "crash");
  const port = await freePort();
  const start = () => startPostgres({ dataDir, port, database: "crash" });
  let crashed = await start();
  crashedPostgres = crashed;
  const chain = await startChain();
  await chain.vault.fund(10n ** 15n);
  const smtp = await startSmtp();
  const env = { ...chainEnv([chain]), DATABASE_URL: crashed.url, DATABASE_SCHEMA: "crash_ponder" };
  const ponder = await startPonder(env);
  await ponder.waitReady();
  const sidecar = await startSidecar({ ...env, SMTP_URL: smtp.url, MAIL_FROM: "stakesync <noreply@stakesync.test>" });
  const [first, second] = wallets(2, "crash") as [`0x${string}`, `0x${string}`];
  await sql(
    crashed.url,
    "INSERT INTO developers (wallet_address, email) VALUES ($1, 'first@example.test'), ($2, 'second@example.test')",
    [first, second],
  );
  await chain.vault.stakeFor(first, 1_000_000n);
  await mine(chain, 2);
  await waitFor("the welcome email", () => smtp.mails.length === 1);
  // A top-up: a step with no welcome job, whose commit nothing else flushes. Its audit row, once
  // read over HTTP, survives the crash as read, its id included (a client pages by that id).
  await chain.vault.stakeFor(first, 500_000n);
  await mine(chain, 2);
  type Audit = { audit: { id: string; at: string; to: { amount: string } }[] };
  const auditOf = async () => ((await (await fetch(`${sidecar.url}/developers/${first}`)).json()) as Audit).audit;
  let seen: Audit["audit"] = [];
  await waitFor("the top-up's audit row", async () => {
    seen = await auditOf();
    return seen.some((a) => a.to.amount === "1.500000");
  });

  await crashed.crash();
  await chain.vault.stakeFor(second, 2_000_000n); // during the outage
  crashed = await start();
  crashedPostgres = crashed;
  const indexer = ponder.process.exitCode === null ? ponder : await startPonder(env);
  await indexer.waitReady();
  await mine(chain, 2);
  await sidecar.waitSynced(chain, crashed.url, "crash_ponder");
  expect(await developer(crashed.url, first)).toMatchObject({ status: "active", stake_amount: "1.500000" });
  expect((await auditOf()).slice(0, seen.length)).toEqual(seen);
  expect(await developer(crashed.url, second)).toMatchObject({ status: "active", stake_amount: "2.000000" });
  await waitFor("the second welcome", () => smtp.mails.length >= 2);
  // A worker tick or two later, still one email each.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(smtp.mails.map((m) => m.to).sort()).toEqual([["first@example.test"], ["second@example.test"]]);
  const rows = await sql<{ state: string }>(crashed.url, "SELECT state FROM stakesync.outbox ORDER BY wallet");
  expect(rows.map((r) => r.state)).toEqual(["sent", "sent"]);
  expect(sidecar.process.exitCode).toBeNull();

  // A synchronous standby named and down: a developer's read flushes its commit locally, and
  // answers; it does not wait for the standby (a COMMIT's wait that no statement_timeout ends).
  await sql(crashed.url, "CREATE TABLE standby_probe (x int)"); // before: its commit would wait
  await sql(crashed.url, "ALTER SYSTEM SET synchronous_standby_names = 'nosuch'");
  await sql(crashed.url, "SELECT pg_reload_conf()");
  try {
    for (let i = 0; i < 3; i++) {
      // WAL not flushed yet when the read comes, as after a step: the read must flush it itself.
      await sql(crashed.url, "SET synchronous_commit = off; INSERT INTO standby_probe VALUES (1)");
      const answer = await fetch(`${sidecar.url}/developers/${first}`, { signal: AbortSignal.timeout(5000) });
      expect(answer.status).toBe(200);
    }
  } finally {
    await sql(crashed.url, "ALTER SYSTEM RESET synchronous_standby_names");
    await sql(crashed.url, "SELECT pg_reload_conf()");
  }
  await smtp.close();
});

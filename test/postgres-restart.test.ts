/** PostgreSQL restarted under a running sidecar: it waits, counts the errors, and carries on by itself. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { type LocalPostgres, startPostgres } from "../lib/local/postgres";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { chainEnv, cleanup, developer, sql, startChain, startPonder, startSidecar } from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

let postgres: LocalPostgres | undefined;
const dir = mkdtempSync(path.join(tmpdir(), "stakesync-pg-restart-"));
afterAll(async () => {
  await cleanup();
  await postgres?.stop();
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
  const sidecar = await startSidecar(env);
  const [before, after] = wallets(2, "restart") as [`0x${string}`, `0x${string}`];
  await sql(postgres.url, "INSERT INTO developers (wallet_address) VALUES ($1), ($2)", [before, after]);
  await chain.vault.stakeFor(before, 1_000_000n);
  await mine(chain, 2);
  await sidecar.waitSynced(chain, postgres.url, "restart_ponder");

  await postgres.stop();
  await new Promise((resolve) => setTimeout(resolve, 3000));
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
});

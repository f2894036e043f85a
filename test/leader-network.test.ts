/**
 * A leader whose database connection goes dark: the network drops its packets, both ways, and
 * neither end hears of it. The server ends the silent session within LEADER_SILENCE_LIMIT_S (its
 * lock goes to whoever asks next); the sidecar, asking the server over its other connections
 * once a second (SyncLoop's `confirmOver`, a pool of its own in main.ts), closes the dark one and
 * stands by instead of leading nothing for as long as TCP retries (about 15 minutes).
 */
import pg from "pg";
import { afterEach, expect, inject, it } from "vitest";
import { waitFor } from "../lib/wait";
import { SyncLoop } from "../sidecar/sync/loop";
import { CHAIN, type Fake, fakePonder, sidecarParts } from "./fast/ponder-fake";
import { startTcpProxy } from "./helpers/peers";

const ends: (() => Promise<unknown> | unknown)[] = [];
let fake: Fake | undefined;
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end();
  await fake?.close();
});

it("closes a leader connection gone dark once the server has ended its session, and leads again on a new one", async () => {
  const proxy = await startTcpProxy(inject("postgresPort"));
  ends.push(() => proxy.close());
  fake = await fakePonder({ SYNC_POLL_MS: "50", RETRY_DELAY_MS: "100" });
  // The leader's connection through the proxy; every other connection straight to the server.
  const url = new URL(fake.url);
  url.port = String(proxy.port);
  const config = { ...fake.config, database: { ...fake.config.database, url: url.toString() } };
  const { log, metrics, heads } = sidecarParts(fake.config, { head: 40 });
  heads.set(CHAIN, { block: 40, at: Date.now() });
  const pool = new pg.Pool({ connectionString: fake.url, max: 3 });
  pool.on("error", () => undefined);
  ends.push(() => pool.end());
  const loop = new SyncLoop(config, log, metrics, heads, { confirmOver: pool });
  loop.start();
  ends.push(() => loop.stop());
  await waitFor("leadership", () => loop.state.role === "leader", { timeoutMs: 30_000, intervalMs: 20 });
  const dark = loop.state.leaderPid;

  proxy.goDark();
  const wentDarkAt = Date.now();
  // The server ends the silent session (4 s), the leader sees the lock gone and closes the
  // connection, and the loop takes the lock again over a new one. Without the check the loop
  // waits on the dark connection for as long as TCP retries, still "leader" with the old pid.
  await waitFor(
    "a new term on a new connection",
    () => loop.state.role === "leader" && loop.state.leaderPid !== null && loop.state.leaderPid !== dark,
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  expect(Date.now() - wentDarkAt).toBeLessThan(60_000);
  const { rows } = await fake.db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [dark]);
  expect(rows).toEqual([{ n: 0 }]); // the server did end the dark session
});

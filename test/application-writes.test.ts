/**
 * The developers table is the application's: it writes other columns of the same rows all day,
 * and may refuse a row (a CHECK, a trigger). Neither may stop the sync of anybody else, and
 * neither may cost the application its own columns.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { startWebhook } from "./helpers/peers";
import {
  chainEnv,
  cleanup,
  developer,
  freshDatabase,
  run,
  type SidecarProcess,
  sql,
  startIndexedChain,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

const SCHEMA = "app_writes";
const TOKEN = "application-writes-admin-token";
const USDC = 1_000_000n;
let chain: TestChain;
let databaseUrl: string;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
let sidecar: SidecarProcess;

beforeAll(async () => {
  webhook = await startWebhook();
  let env: Record<string, string>;
  ({ chain, databaseUrl, env } = await startIndexedChain(SCHEMA));
  sidecar = await startSidecar({
    ...env,
    CONFIRMATIONS: "2",
    ADMIN_TOKEN: TOKEN,
    ALERT_WEBHOOK_URL: webhook.url,
    ALERT_REPEAT_MS: "1000",
  });
  // The application's own column, as a real backend has.
  await sql(databaseUrl, "ALTER TABLE developers ADD COLUMN last_seen timestamptz");
});
afterAll(async () => {
  await cleanup();
  webhook?.close();
});

const register = (wallet: string) => sql(databaseUrl, "INSERT INTO developers (wallet_address) VALUES ($1)", [wallet]);
const syncErrors = async () => {
  const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
  return [...metrics.matchAll(/^stakesync_sync_errors_total\{kind="(sync|database)"\} (\d+)/gm)].reduce(
    (sum, m) => sum + Number(m[2]),
    0,
  );
};
const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${sidecar.url}/admin${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}` } });

describe("an application transaction on a developer's row", () => {
  it("holds back only that row; the sync lands right after the commit, with no sync error and the application's column kept", async () => {
    const [held, other] = wallets(2, "app-tx") as [`0x${string}`, `0x${string}`];
    await register(held);
    await register(other);
    const errorsBefore = await syncErrors();

    const app = new pg.Client({ connectionString: databaseUrl });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("UPDATE developers SET last_seen = now() WHERE wallet_address = $1", [held]);
      await chain.vault.stakeFor(held, 5n * USDC);
      await chain.vault.stakeFor(other, 5n * USDC);
      await mine(chain, 2);
      // Everybody else syncs while the application holds the row…
      await waitFor("the other developer", async () => (await developer(databaseUrl, other))?.status === "active");
      expect((await developer(databaseUrl, held))?.status).toBe("pending");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await developer(databaseUrl, held))?.status).toBe("pending");
      await app.query("COMMIT");
    } finally {
      await app.end();
    }
    const committedAt = Date.now();
    // …and the held row lands once it is free: the next round (100 ms) picks it up.
    await waitFor("the held developer", async () => (await developer(databaseUrl, held))?.status === "active", {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const landedMs = Date.now() - committedAt;
    expect(landedMs, "ms from the application's commit to the sync").toBeLessThan(5000);
    const [row] = await sql<{ last_seen: Date | null; stake_amount: string }>(
      databaseUrl,
      "SELECT last_seen, stake_amount::text FROM developers WHERE wallet_address = $1",
      [held],
    );
    expect(row?.last_seen).toBeInstanceOf(Date);
    expect(row?.stake_amount).toBe("5.000000");
    expect(await syncErrors()).toBe(errorsBefore);
    expect((await sidecar.status()).role).toBe("leader");
  });
});

describe("a row the database refuses", () => {
  it("is set aside as a dead letter, alerted and retried by the admin API; every other developer syncs", async () => {
    const [refused, fine] = wallets(2, "refused") as [`0x${string}`, `0x${string}`];
    await register(refused);
    await register(fine);
    // The application's rule: this wallet may not be activated (for now). Its message carries
    // an address, as application messages do: it must not reach logs or HTTP answers.
    await sql(
      databaseUrl,
      `CREATE FUNCTION refuse_activation() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.wallet_address = '${refused}' AND NEW.status = 'active' THEN
           RAISE EXCEPTION 'activation refused for carol@example.test';
         END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER refuse_activation BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION refuse_activation();`,
    );
    const errorsBefore = await syncErrors();
    await chain.vault.stakeFor(refused, 7n * USDC);
    await chain.vault.stakeFor(fine, 7n * USDC);
    await mine(chain, 2);
    await waitFor("the other developer", async () => (await developer(databaseUrl, fine))?.status === "active");

    let letter: { id: string; kind: string; wallet: string; lastError: string } | undefined;
    await waitFor("the dead letter", async () => {
      const { deadLetters } = (await (await admin("/dead-letters")).json()) as { deadLetters: (typeof letter)[] };
      letter = deadLetters.find((d) => d?.wallet === refused);
      return letter !== undefined;
    });
    expect(letter).toMatchObject({ kind: "developer_sync", lastError: expect.stringContaining("activation refused") });
    expect(letter?.lastError).not.toContain("@");
    expect((await developer(databaseUrl, refused))?.status).toBe("pending");
    await waitFor("the dead_letter alert", () =>
      webhook.alerts.some((a) => a.rule === "dead_letter" && a.state === "firing"),
    );
    expect(await syncErrors(), "a refused row is not a sync error").toBe(errorsBefore);

    // New blocks come and go: the refused row is not retried on its own, the others go on.
    const [later] = wallets(1, "refused-later") as [`0x${string}`];
    await register(later);
    await chain.vault.stakeFor(later, 7n * USDC);
    await mine(chain, 2);
    await waitFor("a later developer", async () => (await developer(databaseUrl, later))?.status === "active");

    // The application lifts its rule; the operator retries.
    await sql(databaseUrl, "DROP TRIGGER refuse_activation ON developers");
    const retry = await admin(`/dead-letters/${letter?.id}/retry`, { method: "POST" });
    expect(retry.status).toBe(200);
    await waitFor("the retried developer", async () => (await developer(databaseUrl, refused))?.status === "active");
    expect((await developer(databaseUrl, refused))?.stake_amount).toBe("7.000000");
    await waitFor("the dead_letter alert to clear", () =>
      webhook.alerts.some((a) => a.rule === "dead_letter" && a.state === "resolved"),
    );
    expect(sidecar.output()).not.toContain("carol@");
    const [job] = await sql<{ state: string }>(databaseUrl, "SELECT state FROM stakesync.outbox WHERE wallet = $1", [
      refused,
    ]);
    expect(job?.state).toBe("skipped"); // activated once, after the retry; no email on file
  });
});

describe("an existing developers table whose columns cannot hold what the sidecar writes", () => {
  it("stops the sidecar at start with one line naming DEVELOPERS_TABLE and the column", async () => {
    const other = await freshDatabase();
    await sql(
      other,
      `CREATE TABLE developers (id serial PRIMARY KEY, wallet_address text UNIQUE NOT NULL, email text,
         status text NOT NULL DEFAULT 'pending', stake_amount numeric(12,2) NOT NULL DEFAULT 0,
         staked_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    const proc = run(process.execPath, ["--import", "tsx", "sidecar/main.ts"], {
      ...chainEnv([chain]),
      DATABASE_URL: other,
      DATABASE_SCHEMA: SCHEMA,
      SIDECAR_PORT: String(await freePort()),
    });
    expect(await proc.exited).toBe(1);
    // Its JSON log (stdout) and the error (stderr) come through two pipes, so their order in
    // output() is not the order written (a busy CI run had the migration's log line last), and
    // either may still be unread when the exit is seen.
    await waitFor("the error line", () => proc.output().includes("stakesync: configuration error"));
    const lines = proc.output().trim().split("\n");
    expect(lines.filter((line) => !line.startsWith("{"))).toEqual([
      "stakesync: configuration error: DEVELOPERS_TABLE public.developers: column stake_amount is numeric(12,2); stakesync needs numeric without precision or scale (amounts are exact)",
    ]);
  });
});

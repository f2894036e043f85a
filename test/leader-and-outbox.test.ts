/**
 * Two sidecars and a real SMTP peer: what a frozen leader, a leader cut off mid-batch and an SMTP
 * server that quotes addresses in its errors must not do to the welcome email.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../lib/wait";
import { header, startSmtp, startWebhook } from "./helpers/peers";
import {
  cleanup,
  developer,
  type SidecarProcess,
  sql,
  startIndexedChain,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

const SCHEMA = "leader_outbox";
const TOKEN = "leader-outbox-admin-token";
const USDC = 1_000_000n;
let chain: TestChain;
let databaseUrl: string;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
let sidecars: SidecarProcess[];

beforeAll(async () => {
  [smtp, webhook] = await Promise.all([startSmtp(), startWebhook()]);
  let env: Record<string, string>;
  ({ chain, databaseUrl, env } = await startIndexedChain(SCHEMA));
  const sidecarEnv = {
    ...env,
    CONFIRMATIONS: "2",
    SMTP_URL: smtp.url,
    MAIL_FROM: "stakesync <hello@stakesync.test>",
    ADMIN_TOKEN: TOKEN,
    ALERT_WEBHOOK_URL: webhook.url,
    RETRY_ATTEMPTS: "1",
    RETRY_DELAY_MS: "200",
  };
  const first = await startSidecar(sidecarEnv);
  await waitFor("a leader", async () => (await first.status()).role === "leader");
  sidecars = [first, await startSidecar(sidecarEnv)];
});
afterAll(async () => {
  for (const sidecar of sidecars ?? []) sidecar.process.kill("SIGCONT");
  await cleanup();
  await smtp?.close();
  webhook?.close();
});

const register = (wallet: string, email: string) =>
  sql(databaseUrl, "INSERT INTO developers (wallet_address, email) VALUES ($1, $2)", [wallet, email]);
const leader = async () => {
  for (const sidecar of sidecars)
    if ((await sidecar.status().catch(() => undefined))?.role === "leader") return sidecar;
  return undefined;
};
const mailsFor = (wallet: string) =>
  smtp.mails.filter((m) => header(m.raw, "Message-ID")?.toLowerCase().includes(`welcome.${wallet.toLowerCase()}@`));
const jobs = (wallets: string[]) =>
  sql<{ wallet: string; state: string }>(
    databaseUrl,
    "SELECT wallet, state FROM stakesync.outbox WHERE wallet = ANY($1) ORDER BY wallet",
    [wallets],
  );

describe("an SMTP server that rejects a recipient and quotes the address", () => {
  it("dead-letters the job without the address in any log line or HTTP answer", async () => {
    const [dave] = wallets(1, "quoted") as [`0x${string}`];
    const address = "dave.quoted@example.test";
    smtp.state.rejected.add(address);
    await register(dave, address);
    await chain.vault.stakeFor(dave, 5n * USDC);
    await mine(chain, 2);
    await waitFor("the dead letter", async () => (await jobs([dave]))[0]?.state === "dead");
    const current = (await leader()) as SidecarProcess;
    const answers = await Promise.all(
      [
        ["/admin/dead-letters", { authorization: `Bearer ${TOKEN}` }],
        ["/status", {}],
        ["/", {}],
        [`/developers/${dave}`, {}],
        ["/metrics", {}],
      ].map(async ([path, headers]) => {
        const response = await fetch(`${current.url}${path}`, { headers: headers as Record<string, string> });
        return [path, await response.text()] as const;
      }),
    );
    const deadLetters = answers[0]?.[1] ?? "";
    expect(deadLetters).toContain("Recipient address rejected"); // the reason is kept…
    for (const [path, body] of answers) expect(body, path as string).not.toContain("dave.quoted@"); // …the address is not
    for (const sidecar of sidecars) expect(sidecar.output()).not.toContain("dave.quoted@");
    expect(webhook.alerts.map((a) => JSON.stringify(a)).join("\n")).not.toContain("dave.quoted@");
  });
});

describe("a leader whose database connection is terminated in the middle of a slow batch", () => {
  it("sends each welcome email once", async () => {
    const developers = wallets(6, "slow-batch");
    for (const [i, wallet] of developers.entries()) await register(wallet, `slow-${i}@example.test`);
    smtp.state.delayMs = 1500; // each message held 1.5 s by the server
    const receivingBefore = smtp.state.receiving;
    await chain.vault.stakeForMany(
      developers as `0x${string}`[],
      developers.map(() => 5n * USDC),
    );
    await mine(chain, 2);
    await waitFor("the first message to be under way", () => smtp.state.receiving > receivingBefore, {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    // Cut the leader off from the database mid-send: its lock goes, a leader (either) takes over.
    await sql(
      databaseUrl,
      `SELECT pg_terminate_backend(pid) FROM pg_locks
        WHERE locktype = 'advisory' AND objid = 7263002 AND granted
          -- This file's leader: files running beside it share the server (and the lock's key).
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    // And two minutes pass for every lease, as they do while a slow server works through a batch
    // (its jobs sent one by one): a job claimed but not yet being sent must not go out twice.
    await sql(
      databaseUrl,
      "UPDATE stakesync.outbox SET locked_until = locked_until - interval '2 minutes' WHERE locked_until IS NOT NULL",
    );
    await waitFor(
      "every job sent",
      async () => (await jobs(developers)).every((j) => j.state === "sent") && (await jobs(developers)).length === 6,
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    smtp.state.delayMs = 0;
    await new Promise((resolve) => setTimeout(resolve, 3000)); // a late duplicate would arrive now
    for (const wallet of developers) expect(mailsFor(wallet).length, wallet).toBe(1);
  });
});

/**
 * Freezes the leader with SIGSTOP (after `before`, with the leader and the standby), expects the
 * standby to lead within 15 s (while `during` runs), then a stake of `wallet`'s synced and
 * welcomed by it; thawed, the old leader stands by and writes and sends nothing.
 */
async function freezeTheLeader(
  wallet: `0x${string}`,
  {
    before = async () => {},
    during = async () => {},
  }: { before?: (leading: SidecarProcess) => Promise<void>; during?: () => Promise<void> } = {},
) {
  const frozen = (await leader()) as SidecarProcess;
  const standby = sidecars.find((s) => s !== frozen) as SidecarProcess;
  await before(frozen);
  frozen.process.kill("SIGSTOP");
  const frozenAt = Date.now();
  await waitFor("the standby to lead", async () => (await standby.status()).role === "leader", {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  expect(Date.now() - frozenAt, "ms until the standby led").toBeLessThan(15_000);
  await during();

  await chain.vault.stakeFor(wallet, 5n * USDC);
  await mine(chain, 2);
  await waitFor("the standby's sync", async () => (await developer(databaseUrl, wallet))?.status === "active");
  await waitFor("the standby's email", () => mailsFor(wallet).length === 1);

  const audits = async () =>
    (await sql<{ audit: string }>(databaseUrl, "SELECT count(*) AS audit FROM stakesync.audit"))[0]?.audit;
  const audit = await audits();
  const mailsBefore = smtp.mails.length;
  frozen.process.kill("SIGCONT");
  await waitFor("the thawed sidecar to stand by", async () => (await frozen.status()).role === "standby");
  await mine(chain, 1);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(smtp.mails.length).toBe(mailsBefore);
  expect(mailsFor(wallet).length).toBe(1);
  expect(await audits()).toBe(audit);
  expect((await standby.status()).role).toBe("leader");
}

describe("a leader frozen by SIGSTOP", () => {
  it("loses leadership to the standby within 15 s, which syncs and sends; thawed, it writes and sends nothing", async () => {
    const [wallet] = wallets(1, "after-freeze") as [`0x${string}`];
    await register(wallet, "after-freeze@example.test");
    await freezeTheLeader(wallet);
  });

  it("loses leadership within 15 s also while an application's migration holds developers, the migration still open; the standby syncs once it ends", async () => {
    const [wallet] = wallets(1, "after-migration") as [`0x${string}`];
    await register(wallet, "after-migration@example.test");
    // An application's migration: the leader's step waits for it (in slices, sidecar/sync/sql/lock-developers.ts).
    // Before, the frozen leader's session stayed busy in that wait, and the lock with it, until the
    // migration ended: no sidecar led, sent or paged meanwhile.
    const migration = new pg.Client({ connectionString: databaseUrl });
    await migration.connect();
    try {
      await freezeTheLeader(wallet, {
        before: async () => {
          await migration.query("BEGIN; LOCK TABLE developers IN ACCESS EXCLUSIVE MODE");
          await waitFor("the leader waiting for the migration", async () => {
            const rows = await sql(
              databaseUrl,
              "SELECT 1 FROM pg_stat_activity WHERE application_name = 'stakesync_sidecar' AND wait_event_type = 'Lock'",
            );
            return rows.length > 0;
          });
        },
        during: async () => {
          const held = await migration.query(
            "SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'developers'::regclass AND granted",
          );
          expect(held.rowCount, "the migration still holds developers").toBe(1);
          await migration.query("COMMIT");
        },
      });
    } finally {
      await migration.end();
    }
  });
});

/**
 * Effects: the welcome email exactly once (real SMTP peer), retries and dead letters, every
 * alert rule firing and clearing at a real webhook, and the admin API.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { waitFor } from "../lib/wait";
import { header, startRpcProxy, startSmtp, startWebhook } from "./helpers/peers";
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
} from "./helpers/stack";
import { mine, mineUntil, wallets } from "./helpers/workload";

const TOKEN = "test-admin-token-0123456789";
const SCHEMA = "effects_ponder";
const REPEAT_MS = 4000;

let chain: TestChain;
let databaseUrl: string;
let ponder: PonderProcess;
let sidecar: SidecarProcess;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
let rpc: Awaited<ReturnType<typeof startRpcProxy>>;
let ponderEnv: Record<string, string>;
let sidecarEnv: Record<string, string>;

beforeAll(async () => {
  chain = await startChain();
  await chain.vault.fund(10n ** 15n);
  [smtp, webhook, rpc] = await Promise.all([startSmtp(), startWebhook(), startRpcProxy(chain.rpcUrl)]);
  databaseUrl = await freshDatabase();
  ponderEnv = { ...chainEnv([chain]), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: SCHEMA };
  ponder = await startPonder(ponderEnv);
  await ponder.waitReady();
  sidecarEnv = {
    ...ponderEnv,
    RPC_URL: rpc.url, // the sidecar's own view of the chain goes through a proxy we can break
    PONDER_URL: ponder.url,
    SMTP_URL: smtp.url,
    MAIL_FROM: "stakesync <noreply@stakesync.test>",
    ALERT_WEBHOOK_URL: webhook.url,
    ADMIN_TOKEN: TOKEN,
    RETRY_ATTEMPTS: "2",
    RETRY_DELAY_MS: "400",
    ALERT_REPEAT_MS: String(REPEAT_MS),
    INDEXER_DOWN_AFTER_MS: "3000",
    ALERT_AFTER_ERRORS: "3",
    MAX_LAG_BLOCKS: "8",
  };
  sidecar = await startSidecar(sidecarEnv);
});
afterAll(async () => {
  await cleanup();
  await smtp?.close();
  webhook?.close();
  rpc?.close();
});

const register = (rows: [string, string | null][]) =>
  sql(databaseUrl, "INSERT INTO developers (wallet_address, email) SELECT * FROM unnest($1::text[], $2::text[])", [
    rows.map((r) => r[0]),
    rows.map((r) => r[1]),
  ]);
const mailsTo = (email: string) => smtp.mails.filter((m) => m.to.includes(email));
const synced = () => sidecar.waitSynced(chain, databaseUrl, SCHEMA);
const admin = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
  fetch(`${sidecar.url}/admin${path}`, {
    ...init,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
const alertsFor = (rule: string) => webhook.alerts.filter((a) => a.rule === rule);

describe("welcome email", () => {
  const [alice, bob, nomail] = wallets(3, "welcome") as [`0x${string}`, `0x${string}`, `0x${string}`];

  it("goes to each activated developer with an email exactly once, with a stable Message-ID", async () => {
    await register([
      [alice, "alice@example.test"],
      [bob, "bob@example.test"],
      [nomail, null],
    ]);
    await chain.vault.stakeForMany([alice, bob, nomail], [5_000_000n, 6_000_000n, 7_000_000n]);
    await mine(chain, 2);
    await waitFor("two emails", () => smtp.mails.length >= 2);
    for (const [wallet, email] of [
      [alice, "alice@example.test"],
      [bob, "bob@example.test"],
    ] as const) {
      const [mail, ...more] = mailsTo(email);
      expect(more).toEqual([]);
      expect(header(mail?.raw ?? "", "Subject")).toBe("Welcome to stakesync: your account is active");
      expect(header(mail?.raw ?? "", "Message-ID")).toBe(`<welcome.${wallet}@stakesync.test>`);
      expect(header(mail?.raw ?? "", "From")).toContain("noreply@stakesync.test");
    }
    await waitFor("the job without an address to be skipped", async () => {
      const rows = await sql<{ state: string }>(databaseUrl, "SELECT state FROM stakesync.outbox WHERE wallet = $1", [
        nomail,
      ]);
      return rows[0]?.state === "skipped";
    });
  });

  it("is not sent again on re-activation, restart, or a full Ponder reindex into a new schema", async () => {
    await chain.vault.slash(alice, 5_000_000n); // → inactive
    await mine(chain, 2);
    await synced();
    expect((await developer(databaseUrl, alice))?.status).toBe("inactive");
    await chain.vault.stakeFor(alice, 1_000_000n); // → active again
    await mine(chain, 2);
    await synced();
    expect((await developer(databaseUrl, alice))?.status).toBe("active");

    await sidecar.stop(); // restart
    sidecar = await startSidecar(sidecarEnv);
    await synced();

    // Redeploy: a new Ponder indexes everything again into another schema; the sidecar follows it.
    await ponder.stop();
    ponder = await startPonder({ ...ponderEnv, DATABASE_SCHEMA: "effects_ponder_v2" });
    await ponder.waitReady();
    await sidecar.stop();
    sidecarEnv = { ...sidecarEnv, DATABASE_SCHEMA: "effects_ponder_v2", PONDER_URL: ponder.url };
    sidecar = await startSidecar(sidecarEnv);
    await sidecar.waitSynced(chain, databaseUrl, "effects_ponder_v2");
    await admin("/reconcile", { method: "POST" });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a worker tick or two
    expect(mailsTo("alice@example.test")).toHaveLength(1);
    expect(smtp.mails).toHaveLength(2);
    const reasons = await sql<{ reason: string }>(databaseUrl, "SELECT reason FROM stakesync.audit WHERE wallet = $1", [
      alice,
    ]);
    expect(reasons.map((r) => r.reason)).toEqual(["stake", "stake", "stake"]); // nothing from the redeploy
  });

  it("goes out once after a SIGKILL between the committed activation and the send", async () => {
    const [carol] = wallets(1, "crash-mail") as [`0x${string}`];
    await sidecar.stop();
    // This sidecar cannot send: the activation commits, the job waits.
    const { SMTP_URL: _, MAIL_FROM: __, ...withoutSmtp } = sidecarEnv;
    const mute = await startSidecar(withoutSmtp);
    await register([[carol, "carol@example.test"]]);
    await chain.vault.stakeFor(carol, 9_000_000n);
    await mine(chain, 2);
    await waitFor("the committed activation and its job", async () => {
      const rows = await sql(databaseUrl, "SELECT 1 FROM stakesync.outbox WHERE wallet = $1 AND state = 'pending'", [
        carol,
      ]);
      return rows.length === 1;
    });
    await mute.kill();
    sidecar = await startSidecar(sidecarEnv);
    await waitFor("carol's email", () => mailsTo("carol@example.test").length > 0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(mailsTo("carol@example.test")).toHaveLength(1);
  });
});

describe("SMTP failures", () => {
  it("retries with growing delays, dead-letters, alerts, and an admin retry delivers it", async () => {
    const [dave] = wallets(1, "smtp-down") as [`0x${string}`];
    // A permanent failure (554): a temporary one (451) is retried for a day without counting.
    smtp.state.failing = true;
    smtp.state.failCode = 554;
    onTestFinished(() => {
      smtp.state.failing = false;
      smtp.state.failCode = 451;
    });
    const before = smtp.attempts.length;
    await register([[dave, "dave@example.test"]]);
    await chain.vault.stakeFor(dave, 8_000_000n);
    await mine(chain, 2);
    await waitFor("a dead letter", async () => {
      const rows = await sql(databaseUrl, "SELECT 1 FROM stakesync.outbox WHERE wallet = $1 AND state = 'dead'", [
        dave,
      ]);
      return rows.length === 1;
    });
    const tries = smtp.attempts.slice(before);
    expect(tries).toHaveLength(3); // the first try and RETRY_ATTEMPTS=2 retries
    const [t0, t1, t2] = tries as [number, number, number];
    expect(t1 - t0).toBeGreaterThanOrEqual(400);
    expect(t2 - t1).toBeGreaterThanOrEqual(800); // RETRY_DELAY_MS × 2^n
    await waitFor("the dead-letter alert", () => alertsFor("dead_letter").some((a) => a.state === "firing"));

    const list = await admin("/dead-letters");
    const body = await list.text();
    expect(body).not.toContain("@example.test");
    const [letter] = (JSON.parse(body) as { deadLetters: { id: string; wallet: string; attempts: number }[] })
      .deadLetters;
    expect(letter).toMatchObject({ wallet: dave, attempts: 3 });

    smtp.state.failing = false;
    const retry = await admin(`/dead-letters/${letter?.id}/retry`, { method: "POST" });
    expect(retry.status).toBe(200);
    await waitFor("dave's email", () => mailsTo("dave@example.test").length === 1);
    await waitFor("the dead-letter alert to clear", () => alertsFor("dead_letter").some((a) => a.state === "resolved"));
  });
});

describe("an SMTP server slow to answer the message it took", () => {
  it("is waited for (22 s, beyond what a silence limit of 20 s allowed), and the email goes out once", async () => {
    const [erin] = wallets(1, "smtp-slow-answer") as [`0x${string}`];
    // The server keeps the message and answers its final "." 22 s later, as one that scans a
    // message before it says so may. Given up on sooner, the job was tried again, and each try
    // delivered one more copy.
    smtp.state.delayMs = 22_000;
    try {
      await register([[erin, "erin@example.test"]]);
      await chain.vault.stakeFor(erin, 8_000_000n);
      await mine(chain, 2);
      await waitFor(
        "the send recorded",
        async () => {
          const rows = await sql<{ state: string }>(
            databaseUrl,
            "SELECT state FROM stakesync.outbox WHERE wallet = $1",
            [erin],
          );
          return rows[0]?.state !== undefined && rows[0].state !== "pending";
        },
        // Long enough for the code before to end in a dead letter (three tries cut off at 20 s).
        { timeoutMs: 90_000 },
      );
    } finally {
      smtp.state.delayMs = 0;
    }
    const rows = await sql(databaseUrl, "SELECT state, attempts FROM stakesync.outbox WHERE wallet = $1", [erin]);
    expect(rows).toEqual([{ state: "sent", attempts: 1 }]);
    expect(mailsTo("erin@example.test")).toHaveLength(1);
  });
});

describe("alerts", () => {
  it("fire and clear: indexer down and lag (Ponder killed), RPC failing, consecutive errors, reorg", async () => {
    // Indexer down + lag: stop Ponder while blocks keep coming, then bring it back on its port.
    const port = Number(new URL(ponder.url).port);
    const seenBefore = webhook.alerts.length; // an earlier test's restarts may have alerted too
    await ponder.stop();
    await mine(chain, 12);
    await waitFor("indexer_down and lag", () =>
      ["indexer_down", "lag"].every((rule) =>
        webhook.alerts.slice(seenBefore).some((a) => a.rule === rule && a.state === "firing"),
      ),
    );
    // While the indexer is down, the sidecar is not ready, and says why.
    const notReady = await fetch(`${sidecar.url}/ready`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { reason: string }).reason).toMatch(/^indexer down: /);
    ponder = await startPonder({ ...ponderEnv, DATABASE_SCHEMA: "effects_ponder_v2" }, port);
    await ponder.waitReady();
    await waitFor("indexer_down and lag to clear", () =>
      ["indexer_down", "lag"].every((rule) => alertsFor(rule).some((a) => a.state === "resolved")),
    );

    // RPC failing: the sidecar's RPC proxy goes down.
    rpc.state.down = true;
    await waitFor("rpc_failing", () => alertsFor("rpc_failing").some((a) => a.state === "firing"), {
      timeoutMs: 20_000,
    });
    rpc.state.down = false;
    await waitFor("rpc_failing to clear", () => alertsFor("rpc_failing").some((a) => a.state === "resolved"), {
      timeoutMs: 20_000,
    });

    // Consecutive errors: Ponder's table disappears from under the sidecar.
    await sql(databaseUrl, "ALTER TABLE effects_ponder_v2.stake_event RENAME TO stake_event_away");
    await waitFor("consecutive_errors", () => alertsFor("consecutive_errors").some((a) => a.state === "firing"), {
      timeoutMs: 20_000,
    });
    expect(alertsFor("consecutive_errors")[0]?.severity).toBe("critical");
    await sql(databaseUrl, "ALTER TABLE effects_ponder_v2.stake_event_away RENAME TO stake_event");
    await waitFor(
      "consecutive_errors to clear",
      () => alertsFor("consecutive_errors").some((a) => a.state === "resolved"),
      {
        timeoutMs: 20_000,
      },
    );

    // Reorg correction.
    const [erin] = wallets(1, "alert-reorg") as [`0x${string}`];
    await register([[erin, null]]);
    const snapshot = await chain.publicClient.request({ method: "evm_snapshot" as never });
    await chain.vault.stakeFor(erin, 3_000_000n);
    await mine(chain, 3);
    await sidecar.waitSynced(chain, databaseUrl, "effects_ponder_v2");
    await chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
    await mine(chain, 6);
    await mineUntil(chain, "reorg_correction", () => alertsFor("reorg_correction").some((a) => a.state === "firing"));
    await waitFor(
      "reorg_correction to clear",
      () => alertsFor("reorg_correction").some((a) => a.state === "resolved"),
      {
        timeoutMs: REPEAT_MS + 5000,
      },
    );

    for (const rule of [
      "indexer_down",
      "lag",
      "rpc_failing",
      "consecutive_errors",
      "dead_letter",
      "reorg_correction",
    ]) {
      const fired = alertsFor(rule).filter((a) => a.state === "firing");
      expect(fired.length, rule).toBeGreaterThan(0);
      // Deduplicated: a rule never fires twice within ALERT_REPEAT_MS.
      for (let i = 1; i < fired.length; i++) {
        const gap = Date.parse(fired[i]?.at ?? "") - Date.parse(fired[i - 1]?.at ?? "");
        expect(gap, `${rule} refired after ${gap} ms`).toBeGreaterThanOrEqual(REPEAT_MS - 50);
      }
      for (const alert of fired)
        expect(alert).toMatchObject({ text: expect.any(String), severity: expect.any(String) });
    }
  });
});

describe("Ponder frozen inside its reorg transaction", () => {
  it("answers /status and /ready, alerts indexer_down, and ends exact once Ponder goes on", async () => {
    const schema = ponder.schema; // the alerts test above reindexed into a new one
    const [frank] = wallets(1, "frozen-reorg") as [`0x${string}`];
    await register([[frank, null]]);
    const seenBefore = webhook.alerts.length;
    // A stake that a reorg takes back, mined and synced first.
    const snapshot = await chain.publicClient.request({ method: "evm_snapshot" as never });
    await chain.vault.stakeFor(frank, 2_000_000n);
    await mine(chain, 3);
    await sidecar.waitSynced(chain, databaseUrl, schema);
    expect(await developer(databaseUrl, frank)).toMatchObject({ status: "active", stake_amount: "2.000000" });
    // The test's session holds `_ponder_checkpoint` (ACCESS SHARE): Ponder's reorg transaction
    // drops its triggers on stake_event, then waits for it at the DROP TRIGGER on the checkpoint.
    const holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      await holder.query(`BEGIN; LOCK TABLE "${schema}"._ponder_checkpoint IN ACCESS SHARE MODE`);
      await chain.publicClient.request({ method: "evm_revert" as never, params: [snapshot] as never });
      await mine(chain, 5);
      await waitFor("Ponder's reorg waiting for the checkpoint's lock", async () => {
        const waiting = await sql(
          databaseUrl,
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DROP TRIGGER%'`,
        );
        return waiting.length > 0;
      });
      // Frozen there: once the lock is free, the server runs its DROP TRIGGER, and the session
      // then idles in its transaction, both tables locked exclusively, for as long as Ponder sleeps.
      ponder.process.kill("SIGSTOP");
      await holder.query("COMMIT");
    } finally {
      await holder.end();
    }
    try {
      const locks = await sql<{ relation: string }>(
        databaseUrl,
        `SELECT l.relation::regclass::text AS relation FROM pg_locks l
          WHERE l.mode = 'AccessExclusiveLock' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(locks.map((l) => l.relation)).toContain(`${schema}._ponder_checkpoint`);

      // The sidecar's reads of Ponder's progress give up on the lock; nothing else waits for it.
      const status = (await (await fetch(`${sidecar.url}/status`, { signal: AbortSignal.timeout(20_000) })).json()) as {
        chains: { indexed: number | null }[];
      };
      expect(status.chains[0]?.indexed).toBeNull();
      await waitFor("indexer_down", () =>
        webhook.alerts.slice(seenBefore).some((a) => a.rule === "indexer_down" && a.state === "firing"),
      );
      const ready = await fetch(`${sidecar.url}/ready`, { signal: AbortSignal.timeout(20_000) });
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(/^indexer down: /);
      expect((await fetch(`${sidecar.url}/metrics`, { signal: AbortSignal.timeout(20_000) })).status).toBe(200);
    } finally {
      ponder.process.kill("SIGCONT");
    }
    // Ponder ends its reorg and goes on: the stake is taken back, and the alert resolves.
    await mineUntil(
      chain,
      "the orphaned stake taken back",
      async () => (await developer(databaseUrl, frank))?.status === "inactive",
    );
    await sidecar.waitSynced(chain, databaseUrl, schema);
    expect(await developer(databaseUrl, frank)).toMatchObject({ status: "inactive", stake_amount: "0.000000" });
    expect(await chain.vault.stakeOf(frank)).toBe(0n);
    await waitFor("indexer_down to clear", () =>
      webhook.alerts.slice(seenBefore).some((a) => a.rule === "indexer_down" && a.state === "resolved"),
    );
  });
});

describe("admin API and privacy", () => {
  it("answers 401 without or with a wrong token, 400 on a bad id, 404 on an unknown one", async () => {
    expect((await admin("/dead-letters", {}, null)).status).toBe(401);
    expect((await admin("/dead-letters", {}, "wrong-token-wrong-token")).status).toBe(401);
    expect((await admin("/reconcile", { method: "POST" }, null)).status).toBe(401);
    const bad = await admin("/dead-letters/abc/retry", { method: "POST" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "id must be a positive integer" });
    expect((await admin("/dead-letters/99999/retry", { method: "POST" })).status).toBe(404);
    const reconcile = await admin("/reconcile", { method: "POST" });
    expect(reconcile.status).toBe(200);
    expect(await reconcile.json()).toMatchObject({ drifted: 0 });
  });

  it("never shows an email address in an HTTP answer or a log line", async () => {
    const [alice] = wallets(1, "welcome");
    for (const path of ["/status", "/", `/developers/${alice}`, "/metrics"]) {
      expect(await (await fetch(`${sidecar.url}${path}`)).text(), path).not.toContain("@example.test");
    }
    expect(await (await admin("/dead-letters")).text()).not.toContain("@example.test");
    expect(sidecar.output()).not.toContain("@example.test");
  });
});

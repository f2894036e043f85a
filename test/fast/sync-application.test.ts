/**
 * The sync beside the application's own transactions on developers, and in shadow mode (adopting
 * a table another system wrote), on fabricated Ponder tables.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { rowSecurityActive } from "../../sidecar/db/developers-table";
import { AlertMonitor } from "../../sidecar/effects/monitor";
import { retryDeadLetter, workCounts } from "../../sidecar/effects/outbox";
import { observeStatus } from "../../sidecar/metrics";
import { readStatus } from "../../sidecar/status";
import { applyDevelopers } from "../../sidecar/sync/apply-developers";
import { countDiffering, planDevelopers } from "../../sidecar/sync/plan-developers";
import { developersBusy, SYNC_LOCK_WAIT_MS } from "../../sidecar/sync/sql/lock-developers";
import {
  applicationTransaction,
  BASE,
  CHAIN,
  checkpoint,
  type Fake,
  type FakeEvent,
  fakeOnTwoChains,
  fakePonder,
  refuseUpdates,
  roundsAroundHold,
  SCHEMA,
  sidecarParts,
  USDC,
  wallet,
} from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

describe("the application's own transactions on developers", () => {
  it("holds back only the row it holds; that row is written once it commits, its columns kept", async () => {
    fake = await fakePonder();
    const [held, other] = [wallet(6), wallet(7)];
    await fake.register(held);
    await fake.register(other);
    await fake.db.query("ALTER TABLE developers ADD COLUMN last_seen timestamptz");
    const { first } = await roundsAroundHold(
      fake,
      held,
      "UPDATE developers SET last_seen = now() WHERE wallet_address = $1",
      () =>
        fake.index(
          [
            { developer: held, amount: 5n * USDC, block: 10 },
            { developer: other, amount: 5n * USDC, block: 10, log: 1 },
          ],
          12,
        ),
    );
    expect(first.changes.map((c) => c.wallet)).toEqual([other]);
    const { rows } = await fake.db.query(
      "SELECT status, last_seen IS NOT NULL AS seen FROM developers WHERE wallet_address = $1",
      [held],
    );
    expect(rows[0]).toEqual({ status: "active", seen: true });
  });

  describe("a row it held while a sidecar of other settings took over (a deploy that changed MIN_STAKE)", () => {
    const held = wallet(8);
    /**
     * With MIN_STAKE=5, `events` reach Ponder while the application holds the developer's row:
     * queued, with the crossing of 5. Then `meanwhile` runs in the application's transaction, and
     * it commits.
     */
    async function queuedWhileHeld(events: FakeEvent[], head: number, meanwhile = async (_app: pg.Client) => {}) {
      fake = await fakePonder({ MIN_STAKE: "5" });
      await fake.register(held);
      const app = await applicationTransaction(
        fake.url,
        "UPDATE developers SET email = email WHERE wallet_address = $1",
        [held],
      );
      try {
        await fake.index(events, head);
        expect((await fake.round()).held).toBe(1);
        await meanwhile(app);
        await app.query("COMMIT");
      } finally {
        await app.end();
      }
    }

    // 6 USDC at block 10 reaches 5; 7 only at block 14, after an unstake of 2 and a stake of 3.
    const events: FakeEvent[] = [
      { developer: held, amount: 6n * USDC, block: 10 },
      { developer: held, kind: "unstaked", amount: 2n * USDC, block: 12 },
      { developer: held, amount: 3n * USDC, block: 14 },
    ];

    for (const lost of [false, true])
      it(`is written with the crossing of the new threshold${lost ? ", once Ponder has it again" : ""}`, async () => {
        // Its first round a reconciliation.
        await queuedWhileHeld(events, 16, () => fake.newTerm({ MIN_STAKE: "7" }));
        if (lost) {
          // Ponder starts over (the deploy's new schema, or a crash recovery): the crossing is not
          // there to be found, and the entry's, the old threshold's, is not written meanwhile.
          await fake.deleteAbove(9);
          await fake.round({ reconcile: true });
          expect(await fake.developer(held)).toMatchObject({ status: "pending", staked_at: null });
          await fake.index(events, 16);
        }
        await fake.round({ reconcile: true });
        const { rows } = await fake.db.query<{ at: string }>(
          `SELECT block_timestamp::text AS at FROM ${SCHEMA}.stake_event WHERE block_number = 14`,
        );
        expect(await fake.developer(held)).toMatchObject({
          status: "active",
          staked_at: new Date(Number(rows[0]?.at) * 1000),
        });
        expect(await workCounts(fake.db)).toMatchObject({ developers: { queued: 0 } });
      });

    it("is not written active without its first activation's time while the new threshold's crossing cannot be seen", async () => {
      // 4 USDC, below MIN_STAKE=5: queued without an activation. The deploy lowers it to 3.
      const below: FakeEvent[] = [{ developer: held, amount: 4n * USDC, block: 10 }];
      await queuedWhileHeld(below, 12, () => fake.newTerm({ MIN_STAKE: "3" }));
      // Ponder starts over: the stake that now crosses is not there to be found. Before, the old
      // entry was written as it stood: active, staked_at empty for good.
      await fake.deleteAbove(9);
      await fake.round({ reconcile: true });
      expect(await fake.developer(held)).toMatchObject({ status: "pending", staked_at: null });
      await fake.index(below, 12);
      await fake.round({ reconcile: true });
      expect(await fake.developer(held)).toMatchObject({
        status: "active",
        staked_at: new Date((1_700_000_000 + 10 * 12) * 1000),
      });
    });

    it("leaves the queue once the application wrote the row as the chain has it", async () => {
      await queuedWhileHeld([{ developer: held, amount: 6n * USDC, block: 10 }], 12, async (app) => {
        await fake.newTerm({ MIN_STAKE: "7" });
        // The application's own write, as the chain has it under MIN_STAKE=7 (6 staked: pending).
        await app.query("UPDATE developers SET stake_amount = 6 WHERE wallet_address = $1", [held]);
      });
      await fake.round({ reconcile: true });
      // Passed over by the write (pendingWallets) and no longer differing: not waiting for good.
      expect(await workCounts(fake.db)).toMatchObject({ developers: { queued: 0 } });
      expect(await fake.developer(held)).toMatchObject({ status: "pending", stake_amount: "6", staked_at: null });
    });

    it("has its activation searched again when queued by a sidecar before the settings were noted", async () => {
      await queuedWhileHeld([{ developer: held, amount: 6n * USDC, block: 10 }], 12);
      // As an entry queued before migration 014, its settings unknown (an activation made up here,
      // to tell them apart): not trusted, searched again.
      await fake.db.query("UPDATE stakesync.developer_queue SET activated_for = NULL, activated_at = 1600000000");
      await fake.round({ reconcile: true });
      expect(await fake.developer(held)).toMatchObject({ status: "active", staked_at: new Date(1700000120 * 1000) });
      expect(await workCounts(fake.db)).toMatchObject({ developers: { queued: 0 } });
    });
  });

  it("sets aside a row the database refuses, writes every other, and sets aside each under a rule that refuses all", async () => {
    fake = await fakePonder();
    const ws = [wallet(8), wallet(9), wallet(10), wallet(11)];
    for (const w of ws) await fake.register(w);
    await fake.db.query(`
      CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.wallet_address = '${ws[2]}' OR current_setting('app.refuse_all', true) = 'on' THEN
          RAISE EXCEPTION 'refused: ask ops@example.test';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION refuse();`);
    await fake.index(
      ws.map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    const result = await fake.round();
    expect(result.refused.map((r) => r.wallet)).toEqual([ws[2]]);
    expect(result.refused[0]?.error).toBe("P0001: refused: ask <address>");
    expect(result.changes.map((c) => c.wallet).sort()).toEqual([ws[0], ws[1], ws[3]].sort());
    const { rows } = await fake.db.query("SELECT wallet, state FROM stakesync.developer_queue");
    expect(rows).toEqual([{ wallet: ws[2], state: "dead" }]);

    // A rule that refuses every row (a trigger deployed by mistake): a dead letter each, not a
    // round failing for every developer (which of the two a refusal is cannot be told).
    await fake.db.query(`ALTER DATABASE ${fake.url.split("/").pop()} SET app.refuse_all = 'on'`);
    const refuseAll = new pg.Client({ connectionString: fake.url });
    await refuseAll.connect();
    try {
      await fake.db.query("UPDATE stakesync.developer_queue SET state = 'pending'");
      await fake.db.query(
        `INSERT INTO stakesync.developer_queue (wallet, reason) VALUES ($1, 'stake'), ($2, 'stake')`,
        [ws[0], ws[1]],
      );
      await fake.db.query("UPDATE stakesync.chain_stake SET amount = amount + 1");
      const { applyDevelopers } = await import("../../sidecar/sync/apply-developers");
      const all = await applyDevelopers(refuseAll, fake.config);
      expect(all.refused.map((r) => r.wallet).sort()).toEqual([ws[0], ws[1], ws[2]].sort());
    } finally {
      await refuseAll.end();
    }
  });
  it("sets aside a row a row-level security policy refuses, and fails the round when the role may not update the table at all", async () => {
    // Shadow mode queues without writing; the write is then made by a role the policy applies to
    // (the fake's own connection is a superuser's, which row-level security lets through).
    fake = await fakePonder({ SIDECAR_MODE: "shadow" });
    const [ok, barred] = [wallet(30), wallet(31)];
    for (const w of [ok, barred]) await fake.register(w);
    const role = "fast_rls_sidecar";
    await fake.db.query(
      `DO $$ BEGIN CREATE ROLE ${role} LOGIN PASSWORD 'rls'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
    );
    await fake.db.query(`
      GRANT USAGE ON SCHEMA stakesync TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA stakesync TO ${role};
      GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA stakesync TO ${role};
      GRANT SELECT, UPDATE ON developers TO ${role};
      ALTER TABLE developers ENABLE ROW LEVEL SECURITY;
      CREATE POLICY sidecar_reads ON developers FOR SELECT TO ${role} USING (true);
      CREATE POLICY sidecar_writes ON developers FOR UPDATE TO ${role}
        USING (true) WITH CHECK (wallet_address <> '${barred}')`);
    await fake.index(
      [ok, barred].map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    await fake.round();
    const client = new pg.Client({ connectionString: fake.url.replace("postgres:postgres@", `${role}:rls@`) });
    await client.connect();
    try {
      // Said at the sidecar's start: the policies bind its role (not the table owner's superuser).
      expect(await rowSecurityActive(client, fake.config.developersTable)).toBe(true);
      expect(await rowSecurityActive(fake.db, fake.config.developersTable)).toBe(false);
      const write = { ...fake.config, mode: "write" as const };
      const applied = await applyDevelopers(client, write);
      expect(applied.changes.map((c) => c.wallet)).toEqual([ok]);
      expect(applied.refused).toEqual([
        {
          wallet: barred,
          error: `42501: new row violates row-level security policy for table "developers"`,
        },
      ]);
      // The role may not update developers at all: every row's matter, the round fails.
      await fake.db.query(`REVOKE UPDATE ON developers FROM ${role}`);
      await fake.db.query("UPDATE stakesync.developer_queue SET state = 'pending'");
      await expect(applyDevelopers(client, write)).rejects.toThrow(/permission denied for table developers/);
      expect((await fake.db.query("SELECT state FROM stakesync.developer_queue")).rows).toEqual([{ state: "pending" }]);
    } finally {
      await client.end();
    }
  });

  it("sets aside a row a trigger refuses with a permission code of its own, as any RAISE of a trigger", async () => {
    fake = await fakePonder();
    const [ok, barred] = [wallet(33), wallet(34)];
    for (const w of [ok, barred]) await fake.register(w);
    await refuseUpdates(fake, `NEW.wallet_address = '${barred}'`);
    await fake.db.query(`CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.wallet_address = '${barred}' THEN
          RAISE EXCEPTION 'not yet verified' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$`);
    await fake.index(
      [ok, barred].map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    const round = await fake.round();
    expect(round.changes.map((c) => c.wallet)).toEqual([ok]);
    expect(round.refused).toEqual([{ wallet: barred, error: "42501: not yet verified" }]);
  });

  it("fails the round, writing nothing, when a trigger raises a code that says to try again, or a statement-level trigger refuses the write", async () => {
    fake = await fakePonder();
    const [w, v] = [wallet(35), wallet(36)];
    for (const x of [w, v]) await fake.register(x);
    await fake.index(
      [w, v].map((x, i) => ({ developer: x, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    // A retry signal of the application's (or a wrapper raising a deadlock again): tried again.
    await fake.db.query(`CREATE FUNCTION busy() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.wallet_address = '${v}' THEN RAISE EXCEPTION 'busy' USING ERRCODE = 'serialization_failure'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER busy BEFORE UPDATE ON developers FOR EACH ROW EXECUTE FUNCTION busy()`);
    await expect(fake.round()).rejects.toThrow("busy");
    const queue = async () =>
      (await fake.db.query("SELECT state, count(*)::int AS n FROM stakesync.developer_queue GROUP BY state")).rows;
    expect(await queue()).toEqual([{ state: "pending", n: 2 }]);
    await fake.db.query("DROP TRIGGER busy ON developers");
    // A statement-level trigger refuses every write, of no row too: the table's matter, not a
    // dead letter of each developer.
    await fake.db.query(`CREATE FUNCTION frozen() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'developers are read-only during the migration'; END $$;
      CREATE TRIGGER frozen BEFORE UPDATE ON developers FOR EACH STATEMENT EXECUTE FUNCTION frozen()`);
    await expect(fake.round()).rejects.toThrow("read-only");
    expect(await queue()).toEqual([{ state: "pending", n: 2 }]);
    await fake.db.query("DROP TRIGGER frozen ON developers");
    expect((await fake.round()).changes.map((c) => c.wallet).sort()).toEqual([w, v].sort());
  });

  it("sets aside refused rows that are all of a round (a rule for these developers, retried together); one written makes the others due", async () => {
    fake = await fakePonder();
    const [a, b, other] = [wallet(12), wallet(13), wallet(14)];
    for (const w of [a, b, other]) await fake.register(w);
    await fake.index([{ developer: other, amount: 5n * USDC, block: 10 }], 12);
    expect((await fake.round()).changes.map((c) => c.wallet)).toEqual([other]);
    await refuseUpdates(fake, `NEW.wallet_address IN ('${a}', '${b}')`);
    // Two developers the rule refuses stake in one block: the round's only rows.
    await fake.index(
      [
        { developer: a, amount: 5n * USDC, block: 14 },
        { developer: b, amount: 5n * USDC, block: 14, log: 1 },
      ],
      16,
    );
    const dead = async () =>
      (
        await fake.db.query<{ id: string; wallet: string }>(
          "SELECT id::text, wallet FROM stakesync.developer_queue WHERE state = 'dead' ORDER BY wallet",
        )
      ).rows;
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([a, b]);
    expect((await dead()).map((d) => d.wallet)).toEqual([a, b]);
    // Retried together before the rule is fixed: dead letters again, not a round failing for good.
    for (const d of await dead()) expect(await retryDeadLetter(fake.db, BigInt(d.id))).toBe(true);
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([a, b]);
    expect((await dead()).map((d) => d.wallet)).toEqual([a, b]);

    // The rule fixed, one retried by an operator and written: the other is due at once.
    await fake.db.query("DROP TRIGGER refuse ON developers");
    const [first] = await dead();
    expect(await retryDeadLetter(fake.db, BigInt(first?.id ?? 0))).toBe(true);
    expect((await fake.round()).changes.map((c) => c.wallet)).toEqual([a]);
    expect((await fake.round({ reconcile: true })).changes.map((c) => c.wallet)).toEqual([b]);
    expect(await fake.developer(b)).toMatchObject({ status: "active", stake_amount: "5.000000" });
  });

  it("makes the other refused rows due only when one is written, not when one is found equal to the chain", async () => {
    fake = await fakePonder();
    const [a, b] = [wallet(20), wallet(21)];
    for (const w of [a, b]) await fake.register(w);
    await refuseUpdates(fake, `NEW.wallet_address IN ('${a}', '${b}')`);
    await fake.index(
      [a, b].map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([a, b]);
    // a's wait is over, and the application wrote a's row itself, as the chain has it.
    await fake.db.query(
      "UPDATE stakesync.developer_queue SET retry_at = now() - interval '1 second' WHERE wallet = $1",
      [a],
    );
    await fake.db.query(
      `ALTER TABLE developers DISABLE TRIGGER refuse;
       UPDATE developers SET status = 'active', stake_amount = 5, staked_at = now() WHERE wallet_address = '${a}';
       ALTER TABLE developers ENABLE TRIGGER refuse`,
    );
    expect((await fake.round({ reconcile: true })).changes).toEqual([]);
    const { rows } = await fake.db.query(
      "SELECT retry_at > now() AS waits FROM stakesync.developer_queue WHERE wallet = $1",
      [b],
    );
    expect(rows).toEqual([{ waits: true }]);
  });

  it("sets aside two developers a rule refuses, the round's only rows, though the same rule refuses an older row too", async () => {
    // The application refuses rows without an email; an old row without one comes first.
    fake = await fakePonder();
    const [old, a, b, d] = [wallet(16), wallet(17), wallet(18), wallet(19)];
    for (const w of [old, a, b]) await fake.register(w);
    await fake.register(d, "d@example.test");
    await refuseUpdates(fake, "NEW.email IS NULL");
    await fake.index(
      [a, b, d].map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([a, b]);
    // Both due together at a reconciliation, both refused again, the round's only rows: the
    // probe would find the old row refused as well and hold the whole sync. Dead letters again.
    await fake.db.query("UPDATE stakesync.developer_queue SET retry_at = now() - interval '1 second'");
    expect((await fake.round({ reconcile: true })).refused.map((r) => r.wallet)).toEqual([a, b]);
    expect((await workCounts(fake.db)).developers).toEqual({
      queued: 0,
      refused: 2,
      refusedLastHour: 2,
      unwritten: 0,
      writeFailingS: null,
    });
    // Retried by an operator, before the rule is fixed: the same.
    const { rows } = await fake.db.query<{ id: string }>("SELECT id::text FROM stakesync.developer_queue");
    for (const r of rows) expect(await retryDeadLetter(fake.db, BigInt(r.id))).toBe(true);
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([a, b]);
  });

  it("tries a refused row again at a reconciliation once its wait has passed, the wait doubling, and writes it once the rule is fixed", async () => {
    fake = await fakePonder();
    const w = wallet(15);
    await fake.register(w);
    await refuseUpdates(fake);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([w]);
    const entry = async () =>
      (
        await fake.db.query<{ state: string; attempts: number; wait: number }>(
          "SELECT state, attempts, ceil(extract(epoch FROM retry_at - now()) / 30)::int * 30 AS wait FROM stakesync.developer_queue",
        )
      ).rows[0];
    // One RECONCILE_INTERVAL_MS (60 s) after the first refusal (to the next 30 s: the round took
    // some of it): a reconciliation before leaves it.
    expect(await entry()).toMatchObject({ state: "dead", attempts: 1, wait: 60 });
    expect((await fake.round({ reconcile: true })).refused).toEqual([]);
    expect(await entry()).toMatchObject({ state: "dead", attempts: 1 });
    // Its wait over, put back in line: still counted refused while an application transaction
    // holds the row (the alert neither clears nor fires again around a try).
    await fake.db.query("UPDATE stakesync.developer_queue SET retry_at = now() - interval '1 second'");
    const app = await applicationTransaction(
      fake.url,
      "SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE",
      [w],
    );
    try {
      expect((await fake.round({ reconcile: true })).held).toBe(1);
      expect((await workCounts(fake.db)).developers).toEqual({
        queued: 0,
        refused: 1,
        refusedLastHour: 1,
        unwritten: 0,
        writeFailingS: null,
      });
    } finally {
      await app.end();
    }
    // Still refused: dead again, for twice as long.
    expect((await fake.round()).refused.map((r) => r.wallet)).toEqual([w]);
    expect(await entry()).toMatchObject({ state: "dead", attempts: 2, wait: 120 });
    // The rule fixed: written at the first reconciliation past the wait, without an admin retry.
    await fake.db.query("DROP TRIGGER refuse ON developers");
    await fake.db.query("UPDATE stakesync.developer_queue SET retry_at = now() - interval '1 second'");
    expect((await fake.round({ reconcile: true })).changes.map((c) => c.wallet)).toEqual([w]);
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
    expect(await entry()).toBeUndefined();
  });

  it("pages developers_refused once ALERT_AFTER_REFUSED developers are first refused within an hour, retries adding nothing, and clears as they are written", async () => {
    fake = await fakePonder({ ALERT_AFTER_REFUSED: "3" });
    const { heads, alerts, loop, metrics } = sidecarParts(fake.config);
    // A monitor of each check's own, as a new leader's: what fires is what Alerts holds.
    const shadow = { ...fake.config, mode: "shadow" as const };
    const check = async (config = fake.config) => {
      const status = await readStatus(fake.pool(), config, heads, null, loop.state);
      await new AlertMonitor(config, heads, alerts).check(status, loop.state);
      const paged = alerts.firing().some((f) => f.rule === "developers_refused");
      observeStatus(metrics, status, undefined, heads, config.mode);
      const gauge = (await metrics.developersRefusedLastHour.get()).values[0]?.value;
      return { count: status.developers.refusedLastHour, paged, gauge };
    };
    const [a, b, c, d] = [20, 21, 22, 23].map(wallet) as [string, string, string, string];
    await fake.register(a, "a@example.test");
    for (const w of [b, c, d]) await fake.register(w);
    await refuseUpdates(fake, "NEW.email IS NULL");
    // A round that writes a and refuses b.
    await fake.index(
      [a, b].map((w, i) => ({ developer: w, amount: 5n * USDC, block: 10, log: i })),
      12,
    );
    const first = await fake.round();
    expect([first.changes.map((x) => x.wallet), first.refused.map((x) => x.wallet)]).toEqual([[a], [b]]);
    expect(await check()).toEqual({ count: 1, paged: false, gauge: 1 });
    // c refused, then b and c again at a reconciliation (and again): two developers, however often.
    await fake.index([{ developer: c, amount: 5n * USDC, block: 13 }], 15);
    expect((await fake.round()).refused.map((x) => x.wallet)).toEqual([c]);
    const due = "UPDATE stakesync.developer_queue SET retry_at = now() - interval '1 second'";
    for (let i = 0; i < 2; i++) {
      await fake.db.query(due);
      expect((await fake.round({ reconcile: true })).refused.map((x) => x.wallet)).toEqual([b, c]);
    }
    expect(await check()).toEqual({ count: 2, paged: false, gauge: 2 });
    // A third developer refused within the hour: a rule that refuses every row? A critical page,
    // in write mode (a shadow sidecar writes nothing).
    await fake.index([{ developer: d, amount: 5n * USDC, block: 16 }], 18);
    expect((await fake.round()).refused.map((x) => x.wallet)).toEqual([d]);
    expect(await check(shadow)).toEqual({ count: 3, paged: false, gauge: 0 });
    expect(await check()).toEqual({ count: 3, paged: true, gauge: 3 });
    expect(alerts.firing().find((f) => f.rule === "developers_refused")).toMatchObject({ severity: "critical" });
    // A refusal older than an hour no longer counts, nor does its retry refused again now; once
    // firing (here, or at the leader before), the page clears only below half the threshold (2 of
    // 3 keeps it).
    await fake.db.query(
      "UPDATE stakesync.developer_queue SET refused_at = now() - interval '61 minutes' WHERE wallet = $1",
      [b],
    );
    expect(await check()).toEqual({ count: 2, paged: true, gauge: 2 });
    await fake.db.query(due);
    expect((await fake.round({ reconcile: true })).refused.map((x) => x.wallet)).toEqual([b, c, d]);
    expect(await check()).toEqual({ count: 2, paged: true, gauge: 2 });
    await fake.db.query(
      "UPDATE stakesync.developer_queue SET refused_at = now() - interval '61 minutes' WHERE wallet = $1",
      [c],
    );
    expect(await check()).toEqual({ count: 1, paged: false, gauge: 1 });
    // The rule fixed: the reconciliation writes them, and they leave the count.
    await fake.db.query("DROP TRIGGER refuse ON developers");
    await fake.db.query(due);
    expect((await fake.round({ reconcile: true })).changes.map((x) => x.wallet)).toEqual([b, c, d]);
    expect(await check()).toEqual({ count: 0, paged: false, gauge: 0 });
    expect((await workCounts(fake.db)).developers).toEqual({
      queued: 0,
      refused: 0,
      refusedLastHour: 0,
      unwritten: 0,
      writeFailingS: null,
    });
  });
});

describe("an application migration holding developers (its ALTER TABLE, or one queued behind a long transaction)", () => {
  /** A registered developer with a 5 USDC stake that Ponder has indexed, not yet synced. */
  async function stakedDeveloper(n: number) {
    fake = await fakePonder();
    const w = wallet(n);
    await fake.register(w);
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    return w;
  }
  /**
   * Rounds as the loop runs them while the table is held: a slice of the wait run out (the step's,
   * DevelopersBusy; the write's, `waited`) is counted and waited again. The round that got through, and
   * the slices run out before it.
   */
  async function roundsThroughSlices() {
    let slices = 0;
    for (;;) {
      try {
        const round = await fake.round();
        if (!round.waited) return { round, slices };
      } catch (error) {
        if (!developersBusy(error)) throw error;
      }
      slices += 1;
    }
  }
  const waitingForALock = async (db: pg.Client) =>
    (
      await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      )
    ).rows[0]?.n !== 0;

  it("is waited for holding none of Ponder's tables, in slices that fail nothing, and the sync goes on the moment it ends", async () => {
    const w = await stakedDeveloper(8);
    const app = await applicationTransaction(fake.url, "LOCK TABLE developers IN ACCESS EXCLUSIVE MODE");
    const ponder = new pg.Client({ connectionString: fake.url });
    await ponder.connect();
    try {
      const rounds = roundsThroughSlices();
      await waitFor("the step waiting for developers", () => waitingForALock(app));
      // Ponder's next reorg takes stake_event at once: taken before developers, the step held it
      // for as long as the migration, and Ponder's reorg waited for the application's DDL.
      await ponder.query(`BEGIN; LOCK TABLE "${SCHEMA}".stake_event IN ACCESS EXCLUSIVE MODE NOWAIT; ROLLBACK`);
      // Longer than a slice, and than the step's other waits (SYNC_LOCK_WAIT_MS): each slice run
      // out is the step's DevelopersBusy, which the loop waits again (a wait in one piece kept a leader
      // gone meanwhile leading, leader-lock-wait.test.ts).
      await new Promise((resolve) => setTimeout(resolve, SYNC_LOCK_WAIT_MS + 300));
      await app.query("ROLLBACK");
      const { round, slices } = await rounds;
      expect(slices).toBeGreaterThanOrEqual(2);
      expect(round.changes.map((c) => c.wallet)).toEqual([w]);
    } finally {
      await app.end();
      await ponder.end();
    }
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
  });

  it("that rewrote the table and committed while the step waited: the step reads the new table, not an empty one", async () => {
    const w = await stakedDeveloper(10);
    // A volatile default rewrites every row, which an older snapshot cannot see (not MVCC-safe).
    const app = await applicationTransaction(
      fake.url,
      "ALTER TABLE developers ADD COLUMN seed double precision DEFAULT random()",
    );
    try {
      const rounds = roundsThroughSlices();
      await waitFor("the step waiting for developers", () => waitingForALock(app));
      await app.query("COMMIT");
      // The step's snapshot is taken once it holds the table: with one taken before, developers
      // looked empty, nothing was queued, and the row stayed pending until a reconciliation.
      expect((await rounds).round.changes.map((c) => c.wallet)).toEqual([w]);
    } finally {
      await app.end();
    }
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
  });

  it("that blocks the developers write's UPDATE (a CREATE INDEX's SHARE lock) is waited for too, in slices that refuse no row, then the row is written", async () => {
    const w = await stakedDeveloper(9);
    // The application holds w's row through the step: w stays queued for the developers write.
    const rowHolder = new pg.Client({ connectionString: fake.url });
    await rowHolder.connect();
    await rowHolder.query("BEGIN");
    await rowHolder.query("SELECT 1 FROM developers WHERE wallet_address = $1 FOR UPDATE", [w]);
    expect((await fake.round()).held).toBe(1);
    await rowHolder.query("ROLLBACK");
    await rowHolder.end();

    const app = await applicationTransaction(fake.url, "LOCK TABLE developers IN SHARE MODE");
    try {
      // As the loop: the queue's write, again after each slice run out (`waited`: nothing written,
      // no row refused, no failure counted).
      const writes = (async () => {
        let slices = 0;
        for (;;) {
          const write = await applyDevelopers(fake.db, fake.config);
          expect(write.refused).toEqual([]);
          if (!write.waited) return { write, slices };
          slices += 1;
        }
      })();
      await waitFor("the developers write waiting", () => waitingForALock(app));
      // Longer than the sync's other waits: given up on, each attempt failed and backed off
      // further, and an ordinary migration paged consecutive_errors.
      await new Promise((resolve) => setTimeout(resolve, SYNC_LOCK_WAIT_MS + 300));
      await app.query("ROLLBACK");
      const { write, slices } = await writes;
      expect(slices).toBeGreaterThanOrEqual(2);
      expect(write.changes.map((c) => c.wallet)).toEqual([w]);
      expect(
        (await fake.db.query("SELECT count(*)::int AS n FROM stakesync.developer_queue WHERE state = 'dead'")).rows,
      ).toEqual([{ n: 0 }]);
    } finally {
      await app.end();
    }
    expect(await fake.developer(w)).toMatchObject({ status: "active", stake_amount: "5.000000" });
  });
});

describe("shadow mode and the plan (adopting a table another system wrote)", () => {
  it("plans a wallet's welcome over all its rows, as the write decides it: an email on the other row, another system's activation on it", async () => {
    fake = await fakePonder({ SIDECAR_MODE: "shadow" });
    const [emailed, activated] = [wallet(0xabc127), wallet(0xabc128)];
    const upper = (w: string) => w.toUpperCase().replace("0X", "0x");
    await fake.register(emailed, null);
    await fake.register(upper(emailed), "dev@example.test");
    await fake.db.query(
      `INSERT INTO developers (wallet_address, email, status, staked_at)
       VALUES ($1, 'dev@example.test', 'inactive', timestamptz '2024-01-01')`,
      [activated],
    );
    await fake.register(upper(activated), "dev@example.test");
    await fake.index(
      [emailed, activated].map((w, log) => ({ developer: w, amount: 5n * USDC, block: 10, log })),
      12,
    );
    await fake.round();
    const welcome = async (w: string) =>
      new Set((await planDevelopers(fake.db, fake.config)).filter((c) => c.wallet === w).map((c) => c.welcome));
    // Asked of each row alone: 'no_email' for the row without one, and 'send' for the row
    // registered since, though the write sends to the one and skips the other.
    expect(await welcome(emailed)).toEqual(new Set(["send"]));
    expect(await welcome(activated)).toEqual(new Set(["historic"]));
    fake.config.mode = "write";
    await fake.round();
    const { rows } = await fake.db.query("SELECT wallet, state, skip_reason FROM stakesync.outbox ORDER BY wallet");
    expect(rows).toEqual([
      { wallet: emailed, state: "pending", skip_reason: null },
      { wallet: activated, state: "skipped", skip_reason: "historic" },
    ]);
  });

  it("plans a welcome not sent as its job stands (sent, queued, dead, skipped)", async () => {
    fake = await fakePonder({ SIDECAR_MODE: "shadow" });
    const [sent, queued, dead, skipped] = [wallet(0xabc131), wallet(0xabc132), wallet(0xabc133), wallet(0xabc134)];
    for (const w of [sent, queued, dead, skipped]) await fake.register(w, "dev@example.test");
    await fake.index(
      [sent, queued, dead, skipped].map((w, log) => ({ developer: w, amount: 5n * USDC, block: 10, log })),
      12,
    );
    await fake.round();
    // An earlier activation's job for each, as the outbox left it.
    await fake.db.query(
      `INSERT INTO stakesync.outbox (kind, wallet, state, skip_reason)
       VALUES ('welcome_email', $1, 'sent', NULL), ('welcome_email', $2, 'pending', NULL),
              ('welcome_email', $3, 'dead', NULL), ('welcome_email', $4, 'skipped', 'no_email')`,
      [sent, queued, dead, skipped],
    );
    const welcomes = new Map(
      (await planDevelopers(fake.db, fake.config)).map((c) => [c.wallet, c.welcome] as [string, string | null]),
    );
    // Before: "one was sent before" for each of them, though only the first was.
    expect([sent, queued, dead, skipped].map((w) => welcomes.get(w))).toEqual([
      "already_sent",
      "already_queued",
      "dead_letter",
      "skipped_before",
    ]);
  });

  it("plans the first activation from the chains in CHAINS only, as the write finds it", async () => {
    fake = await fakeOnTwoChains({ SIDECAR_MODE: "shadow" });
    const w = wallet(0xabc135);
    await fake.register(w, "dev@example.test");
    // A stake on BASE first (block 5), then one on CHAIN (block 10).
    await fake.db.query(
      `INSERT INTO ${SCHEMA}.stake_event VALUES ($1, $2, $3, 'staked', $4, 5, $5, '0x${"b".repeat(64)}', 0)`,
      [checkpoint(5, { chainId: BASE, tx: 0n }), BASE, w, (5n * USDC).toString(), 1_700_000_000 + 5 * 12],
    );
    await fake.index([{ developer: w, amount: 5n * USDC, block: 10 }], 12);
    await fake.round();
    // BASE taken out of CHAINS: its stake no longer counts, and it cannot be the first activation.
    const one = { ...fake.config, chains: fake.config.chains.filter((c) => c.id === CHAIN) };
    const [planned] = (await planDevelopers(fake.db, one)).filter((c) => c.wallet === w);
    expect(planned?.stakeAmount.next).toBe("5");
    // Before: BASE's block 5 time, which the write never writes.
    expect(planned?.stakedAt).toBe(new Date((1_700_000_000 + 10 * 12) * 1000).toISOString().replace(".000Z", "Z"));
  });

  it("writes and sends nothing, and plans each difference with its reason; write mode then does exactly that", async () => {
    fake = await fakePonder({ SIDECAR_MODE: "shadow", EFFECTS_FROM_BLOCK: "15" });
    const [overwrote, unstaked, orphaned, beforeSignup, agreed, later, early] = [30, 31, 32, 33, 34, 35, 36].map(
      wallet,
    );
    // What the original listener left: the last stake instead of the sum, unstakes ignored, a
    // stake a reorg took back, a stake before signup dropped, a stake applied before it confirmed.
    const rows: [string, string, number][] = [
      [overwrote as string, "active", 5],
      [unstaked as string, "active", 20],
      [orphaned as string, "active", 30],
      [beforeSignup as string, "pending", 0],
      [agreed as string, "active", 50],
      [later as string, "pending", 0],
      [early as string, "active", 9],
    ];
    for (const [w, status, amount] of rows) {
      await fake.db.query(
        `INSERT INTO developers (wallet_address, email, status, stake_amount, staked_at)
         VALUES ($1, 'someone@example.test', $2, $3, CASE WHEN $2 = 'active' THEN now() END)`,
        [w, status, amount],
      );
    }
    await fake.index(
      [
        { developer: overwrote as string, amount: 10n * USDC, block: 3 },
        { developer: overwrote as string, amount: 5n * USDC, block: 4 },
        { developer: unstaked as string, amount: 20n * USDC, block: 5 },
        { developer: unstaked as string, kind: "unstaked", amount: 20n * USDC, block: 6 },
        { developer: beforeSignup as string, amount: 40n * USDC, block: 7 },
        { developer: agreed as string, amount: 50n * USDC, block: 8 },
        { developer: later as string, amount: 7n * USDC, block: 20 },
        { developer: early as string, amount: 9n * USDC, block: 22 },
      ],
      22,
    );
    // Without an email too: historic comes first, in the plan as in the write (a job left pending
    // for want of an email is sent once the row has one).
    await fake.db.query("UPDATE developers SET email = NULL WHERE wallet_address = $1", [beforeSignup]);
    const before = (await fake.db.query("SELECT * FROM developers ORDER BY wallet_address")).rows;
    await fake.round();
    await fake.round({ reconcile: true });
    expect((await fake.db.query("SELECT * FROM developers ORDER BY wallet_address")).rows).toEqual(before);
    expect((await fake.db.query("SELECT count(*)::int AS n FROM stakesync.outbox")).rows[0].n).toBe(0);
    expect((await fake.db.query("SELECT count(*)::int AS n FROM stakesync.audit")).rows[0].n).toBe(0);

    const plan = await planDevelopers(fake.db, fake.config);
    const byWallet = new Map(plan.map((c) => [c.wallet, c]));
    expect(byWallet.get(overwrote as string)).toMatchObject({
      why: "stake summed where the old listener overwrote",
      stakeAmount: { now: "5", next: "15" },
      welcome: null,
    });
    expect(byWallet.get(unstaked as string)).toMatchObject({
      why: "unstake or slash not applied",
      status: { now: "active", next: "inactive" },
    });
    expect(byWallet.get(orphaned as string)).toMatchObject({
      why: "stake orphaned by a reorg",
      status: { next: "inactive" },
    });
    expect(byWallet.get(beforeSignup as string)).toMatchObject({
      why: "stake before signup",
      status: { now: "pending", next: "active" },
      welcome: "historic", // block 7, before EFFECTS_FROM_BLOCK
    });
    expect(byWallet.get(later as string)).toMatchObject({ why: "stake before signup", welcome: "send" });
    expect(byWallet.get(later as string)?.stakedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(byWallet.get(early as string)?.why).toMatch(/^stake not confirmed yet/);
    expect(byWallet.has(agreed as string)).toBe(false);
    expect(await countDiffering(fake.db, fake.config)).toBe(plan.length);
    expect(plan).toHaveLength(6);

    // Switched to write mode: the next round does what the plan said, and welcomes only `later`.
    fake.config.mode = "write";
    await fake.round();
    const { rows: jobs } = await fake.db.query(
      "SELECT wallet, state, skip_reason FROM stakesync.outbox ORDER BY wallet",
    );
    expect(jobs).toEqual([
      { wallet: beforeSignup, state: "skipped", skip_reason: "historic" },
      { wallet: later, state: "pending", skip_reason: null },
    ]);
    for (const change of plan) {
      const row = await fake.developer(change.wallet);
      expect(row?.status).toBe(change.status.next);
      expect(Number(row?.stake_amount)).toBe(Number(change.stakeAmount.next));
    }
    expect(await fake.developer(agreed as string)).toMatchObject({ status: "active", stake_amount: "50" });
    expect(await planDevelopers(fake.db, fake.config)).toEqual([]);

    // A developer the old system activated, turned inactive by stakesync (the unstake it had
    // ignored), stakes again after the cut-over: active again, but never welcomed a second time.
    await fake.index([{ developer: unstaked as string, amount: 3n * USDC, block: 30 }], 32);
    fake.config.mode = "shadow"; // synced, not written: what would the write do?
    await fake.round();
    expect((await planDevelopers(fake.db, fake.config)).find((c) => c.wallet === unstaked)).toMatchObject({
      status: { now: "inactive", next: "active" },
      welcome: "historic",
    });
    fake.config.mode = "write";
    await fake.round();
    expect(await fake.developer(unstaked as string)).toMatchObject({ status: "active" });
    const { rows: again } = await fake.db.query("SELECT state, skip_reason FROM stakesync.outbox WHERE wallet = $1", [
      unstaked,
    ]);
    expect(again).toEqual([{ state: "skipped", skip_reason: "historic" }]);
  });
});

/**
 * The soak's alert check (bench/soak/alerts.ts): a fault that had to alert counts only when its
 * rule fired in the fault's window or was firing already when it began.
 */
import { expect, it } from "vitest";
import { ALERT_WINDOW_AFTER_MS, checkAlerts, type FaultRecord, type WebhookAlert } from "../../bench/soak/alerts";

const t0 = Date.parse("2026-12-03T12:00:00Z");
const at = (seconds: number) => new Date(t0 + seconds * 1000).toISOString();
const fault = (seconds: number, expects: FaultRecord["expects"], kind = "ponder_kill"): FaultRecord => ({
  kind,
  at: t0 + seconds * 1000,
  recoveredAt: t0 + (seconds + 10) * 1000,
  expects,
});

it("counts a fault alerted when its rule fires between its start and shortly after recovery", () => {
  const alerts: WebhookAlert[] = [
    { rule: "indexer_down", state: "firing", at: at(6) },
    { rule: "indexer_down", state: "resolved", at: at(9) },
  ];
  const check = checkAlerts([fault(0, "indexer_down")], alerts);
  expect(check.expected).toEqual({ ponder_kill: { faults: 1, alerted: 1 } });
  expect(check.violations).toEqual([]);
  expect(check.withoutFault).toEqual({});
});

it("names a fault whose rule never fired, and one whose alert came only after the window", () => {
  const late = t0 + 100_000 + 10_000 + ALERT_WINDOW_AFTER_MS + 1000;
  const alerts: WebhookAlert[] = [
    { rule: "rpc_failing", state: "firing", at: new Date(late).toISOString() },
    { rule: "rpc_failing", state: "resolved", at: new Date(late + 1000).toISOString() },
  ];
  const check = checkAlerts([fault(0, "indexer_down"), fault(100, "rpc_failing", "rpc_down")], alerts);
  expect(check.expected).toEqual({
    ponder_kill: { faults: 1, alerted: 0 },
    rpc_down: { faults: 1, alerted: 0 },
  });
  expect(check.violations).toHaveLength(2);
  expect(check.violations[0]).toMatch(/ponder_kill .* raised no indexer_down alert/);
  expect(check.withoutFault).toEqual({ rpc_failing: 1 });
});

it("counts a rule firing already when the fault began, not one resolved before it", () => {
  const alerts: WebhookAlert[] = [
    { rule: "reorg_correction", state: "firing", at: at(-5) },
    { rule: "indexer_down", state: "firing", at: at(-8) },
    { rule: "indexer_down", state: "resolved", at: at(-2) },
  ];
  const check = checkAlerts(
    [fault(0, "reorg_correction", "reorg_deep"), fault(0, "indexer_down", "ponder_term")],
    alerts,
  );
  expect(check.expected).toEqual({
    reorg_deep: { faults: 1, alerted: 1 },
    ponder_term: { faults: 1, alerted: 0 },
  });
  expect(check.violations).toHaveLength(1);
});

it("tells faults no rule had to report by reason, and counts an alert with no fault once however often it repeats", () => {
  const alerts: WebhookAlert[] = [
    { rule: "lag", state: "firing", at: at(500) },
    { rule: "lag", state: "firing", at: at(520) },
    { rule: "lag", state: "resolved", at: at(530) },
  ];
  const check = checkAlerts(
    [fault(0, { none: "a sidecar" }, "sidecar_kill"), fault(50, { none: "a sidecar" }, "sidecar_kill")],
    alerts,
  );
  expect(check.expected).toEqual({});
  expect(check.notExpected).toEqual({ "sidecar_kill: a sidecar": 2 });
  expect(check.withoutFault).toEqual({ lag: 1 });
  expect(check.violations).toEqual([]);
});

it("shows a page during a fault that need not raise it, unless a fault that must raise it overlaps", () => {
  const alerts: WebhookAlert[] = [
    { rule: "database_unreachable", state: "firing", at: at(5) },
    { rule: "database_unreachable", state: "resolved", at: at(8) },
    { rule: "indexer_down", state: "firing", at: at(105) },
  ];
  const check = checkAlerts(
    [
      fault(0, { none: "back in seconds" }, "postgres_restart"),
      fault(100, { none: "a sidecar" }, "sidecar_kill"),
      fault(100, "indexer_down", "ponder_kill"),
    ],
    alerts,
  );
  expect(check.pagedAnyway).toEqual({ "postgres_restart: database_unreachable": 1 });
  expect(check.withoutFault).toEqual({});
  expect(check.violations).toEqual([]);
});

it("judges no page of a rule a fault may raise either way, and lists each page anyway with its text", () => {
  const alerts: WebhookAlert[] = [
    { rule: "indexer_down", state: "firing", at: at(6), text: "http://127.0.0.1:1/health unreachable" },
    { rule: "indexer_down", state: "resolved", at: at(9) },
    { rule: "indexer_down", state: "firing", at: at(106), text: "heartbeat stale" },
    { rule: "indexer_down", state: "resolved", at: at(109) },
  ];
  const about = { none: "down for about INDEXER_DOWN_AFTER_MS", may: "indexer_down" as const };
  const check = checkAlerts(
    [
      fault(0, about, "ponder_term"),
      fault(100, about, "ponder_term"),
      fault(100, { none: "a sidecar" }, "sidecar_term"),
    ],
    alerts,
  );
  expect(check.expected).toEqual({});
  expect(check.notExpected).toEqual({
    "ponder_term: down for about INDEXER_DOWN_AFTER_MS": 2,
    "sidecar_term: a sidecar": 1,
  });
  // The second page overlaps a fault that may raise it: not listed, though a sidecar_term overlaps too.
  expect(check.pagedAnyway).toEqual({});
  expect(check.violations).toEqual([]);

  const alone = checkAlerts([fault(100, { none: "a sidecar" }, "sidecar_term")], alerts);
  expect(alone.pagedAnyway).toEqual({ "sidecar_term: indexer_down": 1 });
  expect(alone.pagedAnywayTexts).toEqual(["sidecar_term +6.0 s: indexer_down: heartbeat stale"]);
  expect(alone.withoutFault).toEqual({ indexer_down: 1 });
});

it("does not count a fault alerted by a page already firing that resolves during it; a new onset in its window counts", () => {
  // rpc_failing still paged from Ponder's retries after a reorg when the RPC outage began, and
  // resolved 2 s into it: the rule never saw the outage. Before, that counted as its page.
  const outage = { ...fault(0, "rpc_failing", "rpc_down"), endedAt: t0 + 10_000 };
  const stale: WebhookAlert[] = [
    { rule: "rpc_failing", state: "firing", at: at(-20) },
    { rule: "rpc_failing", state: "firing", at: at(1) }, // a repeat, not an onset
    { rule: "rpc_failing", state: "resolved", at: at(2) },
  ];
  expect(checkAlerts([outage], stale).expected).toEqual({ rpc_down: { faults: 1, alerted: 0 } });
  // It saw the outage: fired again.
  const again = [...stale, { rule: "rpc_failing", state: "firing" as const, at: at(7) }];
  expect(checkAlerts([outage], again).expected).toEqual({ rpc_down: { faults: 1, alerted: 1 } });
  // Firing through the whole fault, resolved once it was undone: counts.
  const through: WebhookAlert[] = [
    { rule: "rpc_failing", state: "firing", at: at(-20) },
    { rule: "rpc_failing", state: "resolved", at: at(12) },
  ];
  expect(checkAlerts([outage], through).expected).toEqual({ rpc_down: { faults: 1, alerted: 1 } });
});

it("lists a page of one rule during a fault that must raise another, instead of dropping it", () => {
  const alerts: WebhookAlert[] = [
    { rule: "indexer_down", state: "firing", at: at(6) },
    { rule: "indexer_down", state: "resolved", at: at(9) },
    { rule: "database_unreachable", state: "firing", at: at(7) },
    { rule: "database_unreachable", state: "resolved", at: at(8) },
  ];
  const check = checkAlerts([fault(0, "indexer_down")], alerts);
  // Before: in neither list.
  expect(check.pagedAnyway).toEqual({ "ponder_kill: database_unreachable": 1 });
  expect(check.withoutFault).toEqual({});
});

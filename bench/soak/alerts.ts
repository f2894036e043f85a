/**
 * Which of the soak's faults must raise which of the sidecar's alert rules (README "Alerts"), and
 * whether each did. A fault should alert when a rule watches what it breaks and it outlasts the
 * rule's threshold with room to spare; the rest are expected to pass without a page:
 *
 * - Ponder killed or stopped: `indexer_down`, when the instance is the one the sidecars watch
 *   (PONDER_URL) and it did not answer /health for INDEXER_DOWN_AFTER_MS plus the two one-second
 *   ticks (the watch's look, the leader's rules) and a second of slack; none when it answered
 *   again within INDEXER_DOWN_AFTER_MS. In between either is right (`may`): the soak knows the
 *   outage only to within a SIGTERM's shutdown, up to 5 s. The second instance is watched by
 *   Prometheus (`up{job="ponder"}`), not by the sidecar.
 *   Frozen (SIGSTOP for 15 s): the same, its /health unanswered throughout.
 * - That instance's RPC failing (503s for 10 s): `rpc_failing` (Ponder's RPC error counter rises;
 *   the sidecars' own head polls go through the same provider). Slow (3 s a call) and lagging
 *   providers answer, and the sync rides them out: no rule.
 * - A deep reorg that takes back a stake a developers row already showed: `reorg_correction`.
 * - Sidecar faults: the sidecars send the webhook's alerts, so a sidecar's death or freeze is
 *   Prometheus's (`StakesyncSidecarDown`, `StakesyncNoLeader`), and the standby leads on.
 * - PostgreSQL restarted: back in seconds, shorter than the sidecars' ALERT_AFTER_ERRORS paced
 *   tries (about 8 s at RETRY_DELAY_MS 500), after which each would page `database_unreachable`.
 * - SMTP failing for 15 s: inside the retry budget, no job dies, so no `dead_letter`.
 * - The application refusing stake changes for 15 s (a trigger): `dead_letter`, when a row was
 *   refused during it; `developers_refused` may fire too (inside the fault's window).
 * - The application's migration holding developers for 15 s: none. The sync waits for the lock
 *   in slices and counts no error; `/ready` reports a write kept waiting only after 120 s.
 */
import type { Rule } from "../../sidecar/effects/alerts";

/** What the webhook received (the sidecar's payload: `at` is when it was sent). */
export type WebhookAlert = { rule: string; state: "firing" | "resolved"; at: string; text?: string };

/** A fault as the soak ran it: `rule` is what it must raise, or why it need not. */
export type FaultRecord = {
  kind: string;
  at: number;
  /** When the soak saw the sync fresh again after undoing it. */
  recoveredAt: number;
  /** When the soak undid it (recoveredAt when not known). */
  endedAt?: number;
  /**
   * The rule it must raise, or why it need not; `may`: a rule it may raise or not, neither
   * judged (an outage too close to the rule's threshold for the soak to tell which side it fell).
   */
  expects: Rule | { none: string; may?: Rule };
};

/** Ponder's outage must outlast the threshold by this: the watch's tick, the rules' tick, slack. */
export const INDEXER_DOWN_MARGIN_MS = 3000;
/** An alert counts for a fault when it fires from the fault's start until this long after recovery. */
export const ALERT_WINDOW_AFTER_MS = 15_000;

/** The webhook's alerts in the order the sidecars sent them (a frozen one's may arrive late). */
const bySendTime = (alerts: WebhookAlert[]) => [...alerts].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));

/**
 * Whether `rule` answered a fault from `from` to `ended` (undone), judged up to `to`: it began
 * firing in [from, to] (an onset: a repeat, or a new leader sending it again, is not one), or it
 * was firing already at `from` and did not resolve before the fault was undone. A page already
 * firing that resolved during the fault (Ponder's retries after a reorg, still paged when an RPC
 * outage began) says nothing of the fault: counted, it covered a rule that never saw it.
 */
export function firedBetween(alerts: WebhookAlert[], rule: string, from: number, to: number, ended = to): boolean {
  const own = bySendTime(alerts.filter((a) => a.rule === rule));
  const at = (a: WebhookAlert) => Date.parse(a.at);
  const before = own.filter((a) => at(a) < from).at(-1);
  const resolvedDuring = own.some((a) => a.state === "resolved" && at(a) >= from && at(a) <= ended);
  if (before?.state === "firing" && !resolvedDuring) return true;
  return own.some((a, i) => {
    const previous = own[i - 1];
    const onset = a.state === "firing" && previous?.state !== "firing";
    return onset && at(a) >= from && at(a) <= to;
  });
}

/** The rules whose last word at the webhook is "firing". */
export function stillFiring(alerts: WebhookAlert[]): string[] {
  const last = new Map<string, string>();
  for (const alert of bySendTime(alerts)) last.set(alert.rule, alert.state);
  return [...last].filter(([, state]) => state === "firing").map(([rule]) => rule);
}

export type AlertCheck = {
  /** Per fault kind: faults that had to alert, and how many did. */
  expected: Record<string, { faults: number; alerted: number }>;
  /** Per fault kind and reason: faults no rule had to report. */
  notExpected: Record<string, number>;
  /** Alerts that began outside every fault's window, by rule: no injected fault explains them. */
  withoutFault: Record<string, number>;
  /**
   * Alerts that began inside the windows of faults of which none had to (or may) raise them, by
   * fault kind and rule: a page the README says that fault does not cause
   * (a PostgreSQL restart of seconds paging database_unreachable). Shown, not a violation: faults
   * overlap, and one may explain what the table cannot tell.
   */
  pagedAnyway: Record<string, number>;
  /** Each of those pages: its fault, when in the fault it began, and the alert's text. */
  pagedAnywayTexts: string[];
  violations: string[];
};

/** Whether `fault` may raise `rule` without the soak judging it (FaultRecord's `may`). */
const mayRaise = (fault: FaultRecord, rule: string) => typeof fault.expects === "object" && fault.expects.may === rule;

export function checkAlerts(faults: FaultRecord[], alerts: WebhookAlert[]): AlertCheck {
  const check: AlertCheck = {
    expected: {},
    notExpected: {},
    withoutFault: {},
    pagedAnyway: {},
    pagedAnywayTexts: [],
    violations: [],
  };
  for (const fault of faults) {
    if (typeof fault.expects === "object") {
      const key = `${fault.kind}: ${fault.expects.none}`;
      check.notExpected[key] = (check.notExpected[key] ?? 0) + 1;
      continue;
    }
    const counted = check.expected[fault.kind] ?? { faults: 0, alerted: 0 };
    check.expected[fault.kind] = counted;
    counted.faults += 1;
    const to = fault.recoveredAt + ALERT_WINDOW_AFTER_MS;
    if (firedBetween(alerts, fault.expects, fault.at, to, fault.endedAt ?? fault.recoveredAt)) counted.alerted += 1;
    else {
      check.violations.push(
        `fault ${fault.kind} at ${new Date(fault.at).toISOString()} raised no ${fault.expects} alert`,
      );
    }
  }
  // Onsets only: a repeat, or a new leader sending a rule again, is the same alert.
  const last = new Map<string, string>();
  for (const alert of bySendTime(alerts)) {
    const onset = alert.state === "firing" && last.get(alert.rule) !== "firing";
    last.set(alert.rule, alert.state);
    const at = Date.parse(alert.at);
    if (!onset) continue;
    const during = faults.filter((f) => at >= f.at && at <= f.recoveredAt + ALERT_WINDOW_AFTER_MS);
    if (during.length === 0) {
      check.withoutFault[alert.rule] = (check.withoutFault[alert.rule] ?? 0) + 1;
    } else if (during.every((f) => f.expects !== alert.rule && !mayRaise(f, alert.rule))) {
      // Against every fault it fell in, also one that had to raise another rule: left to the
      // faults that raise none, a database_unreachable during a Ponder kill was listed nowhere.
      for (const f of during) {
        const key = `${f.kind}: ${alert.rule}`;
        check.pagedAnyway[key] = (check.pagedAnyway[key] ?? 0) + 1;
        const into = ((at - f.at) / 1000).toFixed(1);
        check.pagedAnywayTexts.push(`${f.kind} +${into} s: ${alert.rule}: ${alert.text ?? "(no text)"}`);
      }
    }
  }
  return check;
}

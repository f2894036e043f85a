/**
 * Alert delivery. Each rule is a condition that is either firing or not: it is sent when it
 * starts, again every ALERT_REPEAT_MS while it lasts, and once when it clears. Always logged;
 * POSTed to ALERT_WEBHOOK_URL in the background with retries; a failing webhook never stops
 * anything. The rules firing are kept in stakesync.alert_firing too: a leader that takes over
 * adopts them, and sends "resolved" for one that cleared meanwhile (the one before it cannot).
 * Written only while the leader lock is this term's (the fence, as the outbox's): a leader frozen
 * in the middle of a check wrote its rows after another had adopted them.
 */
import type { Logger } from "pino";
import { backoffMs } from "../../lib/backoff";
import { fetchUrl } from "../../lib/fetch-url";
import type { Queryable } from "../db/queryable";
import { leaderLockHeldOn } from "../leader";
import { type Metrics, RULES } from "../metrics";
import { errorText } from "../redact";

export type Rule =
  | "indexer_down"
  | "lag"
  | "consecutive_errors"
  | "rpc_failing"
  | "dead_letter"
  | "developers_refused"
  | "reorg_correction"
  | "settings_differ"
  | "database_unreachable";
export type Severity = "critical" | "warning";

export type AlertPayload = {
  text: string;
  severity: Severity | "info";
  rule: Rule;
  at: string;
  state: "firing" | "resolved";
  [detail: string]: unknown;
};

/**
 * A rule's webhook deliveries (see Alerts.lanes); `wake` ends the wait before a retry of a payload
 * no longer to be sent (see Alerts.dropped); `stoodDown`: the firings handed over up to that number
 * were this sidecar's before it last stood down, and are not sent any more.
 */
type Lane = { last: Promise<void>; handedOver: number; stoodDown: number; wake: () => void };

/**
 * The details that say which alert a payload is about, sent with its "resolved" too: a
 * `database_unreachable` page is each sidecar's own (monitor.ts checkUnreachable), told apart by
 * `sidecar`, and a resolved without it could not be matched to its firing.
 */
const IDENTIFYING = ["sidecar"] as const;

/** The rule's row is one this sidecar wrote or adopted ($2: their sent_at, to the millisecond). */
const OWN_ROW = "date_trunc('milliseconds', sent_at) = ANY ($2::timestamptz[])";

/**
 * A write's fence (`pid`: the leader connection's backend pid; `server`: its server's start, or
 * NULL): the server has the leader lock held by that connection, on that server. Unfenced when the
 * pid is NULL: an Alerts that never adopted as a leader (a test's); run.ts adopts with the term's
 * pid and server before any write.
 */
const FENCED = (pid: string, server: string) => `(${pid}::int IS NULL OR ${leaderLockHeldOn(`${pid}::int`, server)})`;

/**
 * `own`: every sent_at this sidecar wrote or adopted for the rule's row while it fired. Its row is
 * one of them whether or not its last write landed: keyed on the last alone, a repeat whose
 * INSERT failed left the row of the one before, which the resolved's DELETE then missed (the
 * page shown firing on every standby) and firedSince took for another leader's (the resolved
 * dropped, the receiver's page never closed).
 */
type RuleState = {
  firing: boolean;
  lastSentAt: number;
  /** When it started firing (adopted too): its "since", which repeats leave as it was. */
  firstAt: number;
  text: string;
  severity: Severity;
  own: Date[];
  /** The firing's IDENTIFYING details, for its resolved. */
  identity?: Record<string, unknown>;
};

export class Alerts {
  private readonly rules = new Map<Rule, RuleState>();
  /** Whether this term as leader has read the rules an earlier leader left firing. */
  private adopted = false;
  /**
   * The term that last adopted, its leader connection's backend pid and server: every write to
   * stakesync.alert_firing is made only while the server has the leader lock held by it (FENCED).
   * Unset (never adopted as a leader): unfenced.
   */
  private fence: { pid: number; server: string | null } | undefined;
  /** Writes to stakesync.alert_firing, one after another, in the order of the changes. */
  private stored: Promise<unknown> = Promise.resolve();
  /**
   * Per rule, its webhook deliveries one after another, and how many were handed over: a rule's
   * "resolved" waits for the POST of its "firing" under way, and a retry of an older payload is
   * dropped once a newer one waits. Sent side by side, a "firing" retried after a 502 arrived
   * after its "resolved", and the receiver kept a page open that nothing would ever resolve.
   */
  private readonly lanes = new Map<Rule, Lane>();

  constructor(
    private readonly options: {
      webhookUrl: string | undefined;
      repeatMs: number;
      retry: { attempts: number; delayMs: number };
      log: Logger;
      metrics: Metrics;
      /** Where the rules firing are kept (stakesync.alert_firing); unset, they are not. */
      db?: Queryable;
    },
  ) {}

  /**
   * Once per term as leader, before the first evaluation: the rules an earlier leader reported
   * firing and never resolved become this one's, so the next evaluation resolves them if their
   * condition is gone (and, if not, repeats them only after ALERT_REPEAT_MS, as it would have).
   * `leaderPid`: the term's leader connection (LoopState.leaderPid), which fences this term's
   * writes: a leader frozen in the middle of its check (SIGSTOP) and thawed after another had
   * taken over and adopted its rows repeated a page and wrote its own sent_at over the row; the
   * new leader's resolve then deleted nothing, the page showed firing on every standby, and a
   * retried resolved took that row for a firing since and was dropped: the page stayed open.
   */
  async adopt(leaderPid?: number, server: string | null = null) {
    const { db } = this.options;
    if (this.adopted || !db) return;
    if (leaderPid !== undefined) {
      this.fence = { pid: leaderPid, server };
    }
    const { rows } = await db.query<{
      rule: Rule;
      severity: Severity;
      text: string;
      sent_at: Date;
      first_at: Date;
      delivered: boolean;
    }>(
      "SELECT rule, severity, text, sent_at, coalesce(first_at, sent_at) AS first_at, delivered FROM stakesync.alert_firing",
    );
    for (const row of rows) {
      if (this.rules.get(row.rule)?.firing) continue;
      this.rules.set(row.rule, {
        firing: true,
        // A firing the last leader never delivered (migration 023) is sent at the next check, not
        // after ALERT_REPEAT_MS.
        lastSentAt: row.delivered ? row.sent_at.getTime() : Number.NEGATIVE_INFINITY,
        firstAt: row.first_at.getTime(),
        text: row.text,
        severity: row.severity,
        own: [row.sent_at],
      });
      // A rule this version does not evaluate (left by a newer one, rolled back): nothing would
      // ever resolve it, and it showed firing on /status for good. Resolved now, as cleared.
      if (!RULES.includes(row.rule)) this.set(row.rule, false, row.severity, row.text);
      else this.options.metrics.alertFiring.set({ rule: row.rule }, 1);
    }
    this.adopted = true;
  }

  /** Resolves once every change so far is in stakesync.alert_firing. */
  flush() {
    return this.stored;
  }

  /** Reports a rule's condition now; sends only on a change, or a repeat once the window has passed. */
  set(rule: Rule, firing: boolean, severity: Severity, text: string, details: Record<string, unknown> = {}) {
    const now = Date.now();
    const state = this.rules.get(rule);
    if (firing && (!state?.firing || now - state.lastSentAt >= this.options.repeatMs)) {
      const own = [...(state?.firing ? state.own : []), new Date(now)];
      const firstAt = state?.firing ? state.firstAt : now;
      const identity = Object.fromEntries(
        IDENTIFYING.filter((key) => key in details).map((key) => [key, details[key]]),
      );
      this.rules.set(rule, { firing, lastSentAt: now, firstAt, text, severity, own, identity });
      // first_at as this sidecar has it (a repeat's: the start it wrote or adopted), not kept from
      // the row on conflict: a row an earlier firing left (its DELETE failed) would give a new
      // firing that one's start.
      // Delivered once the webhook took it (post), at once without a webhook (the log is the page).
      this.store(
        `INSERT INTO stakesync.alert_firing (rule, severity, text, sent_at, first_at, delivered)
         SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, $7::boolean WHERE ${FENCED("$6", "$8")}
         ON CONFLICT (rule) DO UPDATE SET severity = $2, text = $3, sent_at = $4, first_at = $5, delivered = $7`,
        [
          rule,
          severity,
          text,
          new Date(now),
          new Date(firstAt),
          this.fence?.pid ?? null,
          !this.options.webhookUrl,
          this.fence?.server ?? null,
        ],
      );
      this.options.metrics.alerts.inc({ rule });
      this.options.metrics.alertFiring.set({ rule }, 1);
      this.deliver({ text, severity, rule, at: new Date(now).toISOString(), state: "firing", ...details });
    } else if (!firing && state?.firing) {
      this.rules.set(rule, { ...state, firing: false, own: [] });
      // Its own row only (sent_at to the millisecond, as a JavaScript date holds it): a DELETE
      // queued behind a slow write could otherwise take a newer leader's, and that page was lost
      // to the leader after it.
      this.store(`DELETE FROM stakesync.alert_firing WHERE rule = $1 AND ${OWN_ROW} AND ${FENCED("$3", "$4")}`, [
        rule,
        state.own,
        this.fence?.pid ?? null,
        this.fence?.server ?? null,
      ]);
      if (RULES.includes(rule)) this.options.metrics.alertFiring.set({ rule }, 0);
      this.deliver(
        {
          text: `resolved: ${state.text}`,
          severity: "info",
          rule,
          at: new Date(now).toISOString(),
          state: "resolved",
          ...state.identity,
        },
        state.own,
      );
    }
  }

  /**
   * This sidecar no longer leads: it evaluates no rule, so it reports none firing (the new
   * leader evaluates and sends them). Nothing is sent: the condition did not clear. Its firings
   * not yet delivered are dropped, and those waiting to be retried stop waiting: one retried
   * after a 502 landed after the new leader's "resolved", and the page stayed open for good (the
   * new leader repeats the firing itself while it lasts). A resolved already handed over still
   * goes: the new leader's firing since is caught by firedSince.
   */
  standDown() {
    for (const [rule, state] of this.rules) {
      if (state.firing) this.options.metrics.alertFiring.set({ rule }, 0);
    }
    this.rules.clear();
    this.adopted = false;
    for (const lane of this.lanes.values()) {
      lane.stoodDown = lane.handedOver;
      lane.wake();
    }
  }

  /** Rules firing now, for the status page. */
  firing(): FiringAlert[] {
    return [...this.rules]
      .filter(([, s]) => s.firing)
      .map(([rule, s]) => ({ rule, severity: s.severity, text: s.text, since: new Date(s.firstAt).toISOString() }));
  }

  /** A failed write is logged: the webhook has the change, only a later leader misses it. */
  private store(sql: string, params: unknown[]) {
    const { db, log } = this.options;
    if (!db) return;
    this.stored = this.stored
      .then(() => db.query(sql, params))
      .catch((error: Error) => log.warn({ err: error.message }, "cannot record the alert's state"));
  }

  /** `ownSentAt`: for a resolved, the sent_at values of the rows this sidecar wrote or adopted (firedSince). */
  private deliver(payload: AlertPayload, ownSentAt?: Date[]) {
    const level = payload.state === "resolved" ? "info" : payload.severity === "critical" ? "error" : "warn";
    this.options.log[level]({ alert: payload }, `alert ${payload.state}: ${payload.rule}`);
    const url = this.options.webhookUrl;
    if (!url) return;
    const lane = this.lanes.get(payload.rule) ?? {
      last: Promise.resolve(),
      handedOver: 0,
      stoodDown: 0,
      wake: () => undefined,
    };
    const number = ++lane.handedOver;
    lane.wake(); // an older payload waiting to be retried: superseded, it gives way now
    lane.last = lane.last.then(() => this.post(url, payload, lane, number, ownSentAt));
    this.lanes.set(payload.rule, lane);
  }

  /**
   * Resolves once every webhook delivery handed over so far has ended: delivered, given up (a
   * firing), superseded, or, for a resolved, the rule fired again since.
   */
  delivered() {
    return Promise.all([...this.lanes.values()].map((lane) => lane.last)).then(() => undefined);
  }

  /**
   * Whether the rule fired again after `payload` (a resolved) was made: a resolved retried for
   * long may outlive this sidecar's term, and another leader's firing of the rule since must not
   * be closed by it. Asked without clocks, by identity: a row for the rule with another sent_at
   * than those this sidecar wrote or adopted (`ownSentAt`) is a firing made since. Its own row,
   * if its DELETE failed, is deleted now. Unknown (no database, or none answering): no.
   */
  private async firedSince(payload: AlertPayload, ownSentAt: Date[] | undefined): Promise<boolean> {
    const { db } = this.options;
    if (!db || !ownSentAt || ownSentAt.length === 0) return false;
    await this.stored;
    const { rows } = await db
      .query<{ fired: boolean }>(
        `WITH own AS (DELETE FROM stakesync.alert_firing WHERE rule = $1 AND ${OWN_ROW})
         SELECT EXISTS (SELECT 1 FROM stakesync.alert_firing WHERE rule = $1 AND NOT ${OWN_ROW}) AS fired`,
        [payload.rule, ownSentAt],
      )
      .catch(() => ({ rows: [] as { fired: boolean }[] }));
    return rows[0]?.fired === true;
  }

  /**
   * Why the payload handed over as `number` is no longer to be sent: a newer one of the rule
   * waits in its lane, or it is a firing made before this sidecar stood down (standDown).
   */
  private dropped(payload: AlertPayload, lane: Lane, number: number): string | undefined {
    if (lane.handedOver !== number) return "a newer one follows";
    if (payload.state === "firing" && number <= lane.stoodDown) return "this sidecar no longer leads";
    return undefined;
  }

  /**
   * POSTs with retries (RETRY_ATTEMPTS for a firing; a resolved until delivered); nothing more
   * once a newer payload of the rule waits in its lane, or, for a firing, once this sidecar
   * stood down.
   */
  private async post(url: string, payload: AlertPayload, lane: Lane, number: number, ownSentAt?: Date[]) {
    const { attempts, delayMs } = this.options.retry;
    for (let attempt = 0; ; attempt++) {
      // Superseded before its first POST too: a lane holds at most the POST under way and the
      // newest payload, however often the rule changes while the webhook hangs.
      const why = this.dropped(payload, lane, number);
      if (why) {
        this.options.log.warn({ rule: payload.rule }, `alert webhook: ${payload.state} not delivered, ${why}`);
        return;
      }
      if (attempt > 0 && payload.state === "resolved" && (await this.firedSince(payload, ownSentAt))) {
        this.options.log.warn(
          { rule: payload.rule },
          "alert webhook: resolved not delivered, the rule fired again since (another leader's)",
        );
        return;
      }
      try {
        const response = await fetchUrl(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(5000),
        });
        if (response.ok) {
          // Its own row by its sent_at (the payload's `at`): a newer leader's is not marked.
          if (payload.state === "firing" && this.options.db) {
            this.store(
              `UPDATE stakesync.alert_firing SET delivered = true
                WHERE rule = $1 AND date_trunc('milliseconds', sent_at) = $2::timestamptz`,
              [payload.rule, payload.at],
            );
          }
          return;
        }
        throw new Error(`webhook answered ${response.status}`);
      } catch (error) {
        this.options.metrics.syncErrors.inc({ kind: "webhook" });
        // A firing is sent again every ALERT_REPEAT_MS while it lasts; a resolved never is, and,
        // lost, it left the page open for good: it is tried until delivered or superseded, at
        // most a minute apart.
        if (attempt >= attempts && payload.state !== "resolved") {
          this.options.log.error({ rule: payload.rule, err: errorText(error) }, "alert webhook failed; giving up");
          return;
        }
        if (attempt === attempts && payload.state === "resolved") {
          this.options.log.error(
            { rule: payload.rule, err: errorText(error) },
            "alert webhook failed; trying the resolved again until it is delivered",
          );
        }
        if (this.dropped(payload, lane, number)) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs(delayMs, attempt + 1));
          lane.wake = () => {
            // Woken by standDown too, where a resolved retried goes on waiting.
            if (!this.dropped(payload, lane, number)) return;
            clearTimeout(timer);
            resolve();
          };
        });
        lane.wake = () => undefined;
      }
    }
  }
}

/** An alert firing, as /status and the status page show it. */
export type FiringAlert = { rule: Rule; severity: Severity; text: string; since: string };

/**
 * The alerts firing as the leader last sent them (alert_firing): what a standby shows. Its own
 * Alerts are cleared at each tick, and a standby behind a load balancer showed "none firing" to
 * every other page view during a critical page. Since when each fires: its first_at (migration
 * 022), not the last repeat's sent_at.
 */
export async function leaderFiring(db: Queryable): Promise<FiringAlert[]> {
  const { rows } = await db.query<FiringAlert>(
    `SELECT rule, severity, text,
            to_char(coalesce(first_at, sent_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS since
       FROM stakesync.alert_firing ORDER BY rule`,
  );
  return rows;
}

/**
 * Evaluates the alert rules (README "Alerts") on the leader, once a second, and reports them to
 * Alerts: on what the tick read before (readPonder, readStatus), with no wait of its own, so that
 * the leadership run.ts confirmed after those reads still holds while the rules are judged.
 */
import type { SidecarConfig } from "../../lib/config";
import { fetchUrl } from "../../lib/fetch-url";
import { freshBlock, type Head } from "../chain-heads";
import type { Status } from "../status";
import type { LoopState } from "../sync/loop";
import type { Alerts } from "./alerts";

/**
 * Ponder's RPC errors page when its error counter rose at RPC_FIRE_CHECKS of the last
 * RPC_WINDOW_CHECKS checks (one a second, later while Ponder's /metrics is slow to answer), and
 * clear once it has not risen for RPC_CLEAR_CHECKS checks. A request that fails is tried again
 * after 0.125 s, then twice as long each time, so a provider that is down makes the counter rise
 * at once and then ever more rarely. Errors that do not recur over three checks do not page, and
 * a page does not flap with the retries: Ponder after a deep reorg asks for a block that is gone
 * for up to a minute, and each rise of the counter paged and cleared again, six times over one
 * such minute in the soak (seed 8); that is one page now. A provider that keeps failing now and
 * then keeps it firing.
 */
const RPC_WINDOW_CHECKS = 5;
const RPC_FIRE_CHECKS = 3;
const RPC_CLEAR_CHECKS = 30;
/**
 * Sidecars whose settings differ page once that has lasted this long: a deploy that changes a
 * setting runs old and new side by side for a while, and that alone is not a page.
 */
export const SETTINGS_DIFFER_AFTER_MS = 5 * 60_000;

/** What the checks saw of Ponder's RPC error counter: a new one at each term (standDown). */
type PonderRpcWatch = {
  /** The counter at the last check that read it. */
  errors: number | undefined;
  /** For each of the last RPC_WINDOW_CHECKS checks: whether the counter rose. */
  rises: boolean[];
  /** Checks since it last rose. */
  quiet: number;
  failing: boolean;
  /** No check yet in this term. */
  first: boolean;
};
/** What a tick read of Ponder's /metrics (readPonder): its RPC error counter, undefined unanswered. */
export type PonderRead = { rpcErrors: number | undefined };
/** Nothing read of Ponder: as an unanswered read (no rise). */
export const PONDER_UNREAD: PonderRead = { rpcErrors: undefined };

const newPonderRpcWatch = (): PonderRpcWatch => ({
  errors: undefined,
  rises: [],
  quiet: Number.POSITIVE_INFINITY,
  failing: false,
  first: true,
});

/**
 * What a sidecar pages for itself, leader or not, on Alerts of its own that store nothing: the
 * database out of its reach for ALERT_AFTER_ERRORS of its tries to lead in a row (loop.ts
 * `unreachable`), or of its preparations at start (main.ts). No sidecar leads then, so no
 * leader would page it; each sidecar does, named in the payload (`sidecar`: its host and port,
 * the same across its restarts), and resolves it once it reaches the database again. A rule of
 * its own, not consecutive_errors: a standby cut off alone pages while the leader syncs, and its
 * "resolved" must not close the leader's page of another cause.
 */
export function checkUnreachable(
  alerts: Alerts,
  config: Pick<SidecarConfig, "alertAfterErrors">,
  { tries, error }: LoopState["unreachable"],
  sidecar: string,
) {
  alerts.set(
    "database_unreachable",
    tries >= config.alertAfterErrors,
    "critical",
    `database unreachable from sidecar ${sidecar} (${tries} tries in a row); last: ${error}`,
    { sidecar, tries },
  );
}

export class AlertMonitor {
  private ponderRpc = newPonderRpcWatch();
  /** Since when the live sidecars' settings have differed, as this leader saw it. */
  private differSince: number | undefined;

  constructor(
    private readonly config: SidecarConfig,
    private readonly heads: Map<number, Head>,
    private readonly alerts: Alerts,
    private readonly settingsDifferAfterMs = SETTINGS_DIFFER_AFTER_MS,
  ) {}

  /**
   * The sidecar stands down (run.ts): what it saw of Ponder's errors is forgotten. Kept, a rule
   * firing when it stood down paged again at its first check as leader, though the other leader
   * had cleared it meanwhile, and a rise during the standby counted as one.
   */
  standDown() {
    this.ponderRpc = newPonderRpcWatch();
    this.differSince = undefined;
  }

  /**
   * The tick's read of Ponder's /metrics (2 s at most), made beside its status read and before
   * any rule is judged. Read inside check, it was the wait a leader frozen there (SIGSTOP)
   * thawed from: it judged every rule after it as the leader it no longer was.
   */
  async readPonder(): Promise<PonderRead> {
    const text = await fetchUrl(`${this.config.ponderUrl}/metrics`, { signal: AbortSignal.timeout(2000) })
      .then((r) => (r.ok ? r.text() : undefined))
      .catch(() => undefined);
    // Unanswered (Ponder down: indexer_down's matter), nothing is known of its requests: no rise.
    return {
      rpcErrors:
        text === undefined
          ? undefined
          : [...text.matchAll(/^ponder_rpc_request_error_total\{[^}]*\} (\d+)/gm)].reduce(
              (sum, m) => sum + Number(m[1]),
              0,
            ),
    };
  }

  /**
   * `indexerJudged`: whether status.indexer is a verdict yet (IndexerWatch.judged); `ponder`: the
   * tick's readPonder. Synchronous: nothing between the caller's last look at its leadership and
   * the reports to Alerts.
   */
  check(status: Status, loop: LoopState, indexerJudged = true, ponder: PonderRead = PONDER_UNREAD) {
    const { config, alerts } = this;
    // Firing is what Alerts holds, adopted from the last leader too (alerts.ts): a rule whose
    // condition this leader has not watched long enough to know is taken to hold as it was left,
    // or a failover resolved it, and paged it again minutes later.
    const firing = new Set(alerts.firing().map((f) => f.rule));
    const indexerKept = status.indexer === null && !indexerJudged && firing.has("indexer_down");
    alerts.set(
      "indexer_down",
      status.indexer !== null || indexerKept,
      "critical",
      indexerKept
        ? (alerts.firing().find((f) => f.rule === "indexer_down")?.text ?? "indexer down")
        : `indexer down: ${status.indexer}`,
    );

    // Once firing, it clears only when every chain's lag is known and half way back: a
    // head unknown for a while (the provider failing, HEAD_STILL_MS) resolved it while the sync
    // was as far behind as before, and a lag hovering at the limit paged and resolved in turn.
    // Half way between the chain's CONFIRMATIONS (the lag of a sync that is current) and the
    // limit: half the limit itself never cleared where CONFIRMATIONS was as large.
    const lagging = firing.has("lag");
    const limit = (chainId: number) => {
      const confirmations = config.chains.find((c) => c.id === chainId)?.confirmations ?? 0;
      return lagging
        ? confirmations + Math.floor(Math.max(0, config.maxLagBlocks - confirmations) / 2)
        : config.maxLagBlocks;
    };
    const behind = status.chains.filter((c) => c.lagBlocks !== null && c.lagBlocks > limit(c.chainId));
    const unknown = lagging && status.chains.some((c) => c.lagBlocks === null);
    alerts.set(
      "lag",
      behind.length > 0 || unknown,
      "warning",
      behind.length > 0
        ? `sync lag above ${config.maxLagBlocks} blocks on chain ${behind.map((c) => `${c.chainId} (${c.lagBlocks})`).join(", ")}`
        : (alerts.firing().find((f) => f.rule === "lag")?.text ?? `sync lag above ${config.maxLagBlocks} blocks`),
      { chains: behind.map((c) => ({ chainId: c.chainId, lagBlocks: c.lagBlocks })) },
    );

    // Adopted, it stands until this term has synced: the count starts at 0 with every term, and
    // a failover in a lasting failure resolved the page, which came back a minute later.
    const erring = loop.consecutiveErrors >= config.alertAfterErrors;
    const adopted = !erring && firing.has("consecutive_errors") && !loop.syncedThisTerm;
    alerts.set(
      "consecutive_errors",
      erring || adopted,
      "critical",
      adopted
        ? (alerts.firing().find((f) => f.rule === "consecutive_errors")?.text ?? "consecutive sync errors")
        : `${loop.consecutiveErrors} consecutive sync errors; last: ${loop.lastError?.kind}`,
      // The error's text for the webhook alone, not in the text that /status and the status page
      // show: a database's message may quote a row's values (redact.ts takes out email addresses only).
      { consecutiveErrors: loop.consecutiveErrors, lastError: loop.lastError?.message },
    );

    const rpc = this.rpcProblem(firing.has("rpc_failing"), ponder);
    alerts.set("rpc_failing", rpc !== null, "warning", `RPC failing: ${rpc}`);

    const { dead } = status.outbox;
    const { refused } = status.developers;
    alerts.set(
      "dead_letter",
      dead + refused > 0,
      "warning",
      `${dead} outbox job(s) and ${refused} developers row(s) the database refused, dead-lettered: see /admin/dead-letters`,
      { dead, refused },
    );

    // Every refused row is a dead letter (apply-developers.ts): the sync goes on for the others.
    // But many developers refused within an hour point to a rule or trigger that refuses every
    // row, or most (deployed by mistake), rather than one for a few developers: that pages.
    // Counted by developer at its first refusal, so retries refused again add nothing; a row
    // written leaves the count. Once firing it clears below half the threshold, so that a count
    // near it (entries leaving the hour as others come) does not page and resolve in turn.
    // Shadow mode writes nothing, so it has nothing to page about.
    // Firing (adopted too): a failover keeps the page.
    const { refusedLastHour } = status.developers;
    const refusedAt = firing.has("developers_refused")
      ? Math.ceil(config.alertAfterRefused / 2)
      : config.alertAfterRefused;
    alerts.set(
      "developers_refused",
      config.mode === "write" && refusedLastHour >= refusedAt,
      "critical",
      `the database refused ${refusedLastHour} developers rows for the first time in the last hour, not written since (ALERT_AFTER_REFUSED ${config.alertAfterRefused}): a rule or trigger that refuses every row? See /admin/dead-letters`,
      { refusedLastHour },
    );

    // From the audit (status.ts), as any leader reads it: a leader that corrected and crashed or
    // froze before its next check lost the page when it lived in that leader's memory alone.
    // Its age by the database's clock: the sidecar's own, minutes off, silenced the page or held it.
    const ageS = status.lastReorgCorrectionAgeS;
    alerts.set(
      "reorg_correction",
      ageS !== null && ageS * 1000 < config.alertRepeatMs,
      "warning",
      "developers corrected after a reorg deeper than CONFIRMATIONS",
    );

    // Adopted firing: the difference has lasted long enough already.
    const differ = status.settingsDiffer;
    if (differ.length === 0) this.differSince = undefined;
    else this.differSince ??= firing.has("settings_differ") ? Date.now() - this.settingsDifferAfterMs : Date.now();
    alerts.set(
      "settings_differ",
      this.differSince !== undefined && Date.now() - this.differSince >= this.settingsDifferAfterMs,
      "warning",
      `sidecars disagree on settings that decide what is written; each leader applies its own to every row: ${differ.join("; ")}`,
      { settings: differ },
    );
  }

  /**
   * The sidecar's own head polls, and whether Ponder's RPC requests keep failing (see
   * RPC_FIRE_CHECKS). `firing`: the rule is firing in Alerts; at a term's first check, adopted
   * from the last leader, its watch starts as failing, to clear after RPC_CLEAR_CHECKS quiet ones.
   */
  private rpcProblem(firing: boolean, { rpcErrors: errors }: PonderRead): string | null {
    const now = Date.now();
    const stale = this.config.chains.filter((c) => freshBlock(this.heads.get(c.id), now, c.headStillMs) === null);
    const watch = this.ponderRpc;
    if (watch.first) {
      watch.first = false;
      if (firing) {
        watch.failing = true;
        watch.quiet = 0;
      }
    }
    const rose = errors !== undefined && watch.errors !== undefined && errors > watch.errors;
    if (errors !== undefined) watch.errors = errors;
    watch.rises = [...watch.rises, rose].slice(-RPC_WINDOW_CHECKS);
    watch.quiet = rose ? 0 : watch.quiet + 1;
    watch.failing = watch.failing
      ? watch.quiet < RPC_CLEAR_CHECKS
      : watch.rises.filter(Boolean).length >= RPC_FIRE_CHECKS;
    if (stale.length > 0) {
      return `no head from chain ${stale.map((c) => c.id).join(", ")} (none polled for 10 s, or it stood still past HEAD_STILL_MS)`;
    }
    return watch.failing ? "Ponder's RPC requests are failing" : null;
  }
}

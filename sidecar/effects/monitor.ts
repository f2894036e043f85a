/** Evaluates the alert rules (README "Alerts") on the leader, once a second, and reports them to Alerts. */
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import type { Status } from "../status";
import type { LoopState } from "../sync/loop";
import type { Alerts } from "./alerts";

const HEAD_STALE_MS = 10_000;

export class AlertMonitor {
  private lastReorgAt = 0;
  private ponderRpcErrors: number | undefined;

  constructor(
    private readonly config: SidecarConfig,
    private readonly heads: Map<number, Head>,
    private readonly alerts: Alerts,
  ) {}

  noteReorgCorrection() {
    this.lastReorgAt = Date.now();
  }

  async check(status: Status, loop: LoopState) {
    const { config, alerts } = this;
    alerts.set("indexer_down", status.indexer !== null, "critical", `indexer down: ${status.indexer}`);

    const behind = status.chains.filter((c) => c.lagBlocks !== null && c.lagBlocks > config.maxLagBlocks);
    alerts.set(
      "lag",
      behind.length > 0,
      "warning",
      `sync lag above ${config.maxLagBlocks} blocks on chain ${behind.map((c) => `${c.chainId} (${c.lagBlocks})`).join(", ")}`,
      { chains: behind.map((c) => ({ chainId: c.chainId, lagBlocks: c.lagBlocks })) },
    );

    alerts.set(
      "consecutive_errors",
      loop.consecutiveErrors >= config.alertAfterErrors,
      "critical",
      `${loop.consecutiveErrors} consecutive sync errors; last: ${loop.lastError?.kind} ${loop.lastError?.message}`,
      { consecutiveErrors: loop.consecutiveErrors },
    );

    const rpc = await this.rpcProblem();
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

    alerts.set(
      "reorg_correction",
      Date.now() - this.lastReorgAt < config.alertRepeatMs,
      "warning",
      "developers corrected after a reorg deeper than CONFIRMATIONS",
    );
  }

  /** The sidecar's own head polls, and whether Ponder's RPC error counter moved since last time. */
  private async rpcProblem(): Promise<string | null> {
    const stale = this.config.chains.filter((c) => {
      const head = this.heads.get(c.id);
      return !head || Date.now() - head.at > HEAD_STALE_MS;
    });
    const text = await fetch(`${this.config.ponderUrl}/metrics`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .catch(() => "");
    const errors = [...text.matchAll(/^ponder_rpc_request_error_total\{[^}]*\} (\d+)/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    const ponderFailing = this.ponderRpcErrors !== undefined && errors > this.ponderRpcErrors;
    this.ponderRpcErrors = errors;
    if (stale.length > 0) return `no head from chain ${stale.map((c) => c.id).join(", ")}`;
    return ponderFailing ? "Ponder's RPC requests are failing" : null;
  }
}

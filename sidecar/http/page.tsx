/**
 * GET /: the status page for people. Rendered on the server, refreshed by a meta refresh (a
 * short poll that needs no JavaScript). Shows wallets shortened and never an email address.
 */
import type { Alerts } from "../effects/alerts";
import type { RecentChange, Status } from "../status";

const short = (hex: string) => `${hex.slice(0, 6)}…${hex.slice(-4)}`;

/** Share of the way from the start block to the head: Ponder's (indexed) and the sidecar's (synced). */
function progress(done: number | null, start: number, head: number | null) {
  if (done === null || head === null) return 0;
  if (head <= start) return 1;
  return Math.max(0, Math.min(1, (done - start) / (head - start)));
}

const style = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem } h2 { font-size: 1.1rem; margin-top: 2rem }
table { border-collapse: collapse; width: 100% } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e6ec }
td.num { font-variant-numeric: tabular-nums } .badge { padding: .1rem .5rem; border-radius: 1rem; font-size: .85rem }
.ok { background: #dcf5e3 } .bad { background: #fde2e1 } .warn { background: #fff1cc } .muted { color: #6b7385 }
progress { width: 8rem; vertical-align: middle }`;

export function StatusPage(props: {
  status: Status;
  changes: RecentChange[];
  alerts: ReturnType<Alerts["firing"]>;
  explorerUrl: string | undefined;
  startBlocks: Map<number, number>;
}) {
  const { status, changes, alerts, explorerUrl } = props;
  const txLink = (hash: string | null) =>
    hash === null ? (
      "—"
    ) : explorerUrl ? (
      <a href={`${explorerUrl.replace(/\/$/, "")}/tx/${hash}`}>{short(hash)}</a>
    ) : (
      short(hash)
    );
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="3" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>stakesync status</title>
        <style>{style}</style>
      </head>
      <body>
        <h1>stakesync</h1>
        <p>
          <span class={`badge ${status.role === "leader" ? "ok" : "warn"}`} id="role">
            {status.role}
          </span>{" "}
          <span class={`badge ${status.ready ? "ok" : "bad"}`} id="ready">
            {status.ready ? "ready" : `not ready: ${status.reason}`}
          </span>{" "}
          <span class="muted">last sync {status.lastSyncAt ?? "never"}</span>
        </p>

        <h2>Chains</h2>
        <table>
          <thead>
            <tr>
              <th>chain</th>
              <th>head</th>
              <th>indexed (Ponder)</th>
              <th>finalized</th>
              <th>synced (developers)</th>
              <th>lag</th>
            </tr>
          </thead>
          <tbody>
            {status.chains.map((chain) => {
              const start = (props.startBlocks.get(chain.chainId) ?? 0) - 1;
              const indexed = progress(chain.indexed, start, chain.head);
              const synced = progress(chain.synced, start, chain.head);
              return (
                <tr data-chain={chain.chainId}>
                  <td>{chain.chainId}</td>
                  <td class="num">{chain.head ?? "?"}</td>
                  <td class="num">
                    {chain.indexed ?? "?"}{" "}
                    <progress class="indexed" max="1" value={indexed.toFixed(4)}>
                      {Math.round(indexed * 100)}%
                    </progress>
                  </td>
                  <td class="num">{chain.finalized ?? "?"}</td>
                  <td class="num synced">
                    {chain.synced}{" "}
                    <progress class="synced-bar" max="1" value={synced.toFixed(4)}>
                      {Math.round(synced * 100)}%
                    </progress>
                  </td>
                  <td class="num lag">{chain.lagBlocks ?? "?"} blocks</td>
                </tr>
              );
            })}
          </tbody>
        </table>

        <h2>Alerts</h2>
        {alerts.length === 0 ? (
          <p class="muted">none firing</p>
        ) : (
          <ul>
            {alerts.map((a) => (
              <li>
                <span class={`badge ${a.severity === "critical" ? "bad" : "warn"}`}>{a.severity}</span> {a.rule}:{" "}
                {a.text}
              </li>
            ))}
          </ul>
        )}

        <h2>Outbox</h2>
        <p id="outbox">
          {status.outbox.pending} pending · {status.outbox.dead} dead · developers rows queued{" "}
          {status.developers.queued}, refused {status.developers.refused}
        </p>

        <h2>Latest changes to developers</h2>
        <table id="changes">
          <thead>
            <tr>
              <th>when</th>
              <th>wallet</th>
              <th>change</th>
              <th>reason</th>
              <th>chain · block</th>
              <th>transaction</th>
            </tr>
          </thead>
          <tbody>
            {changes.map((c) => (
              <tr data-wallet={c.wallet}>
                <td class="muted">{c.at.slice(0, 19).replace("T", " ")}</td>
                <td title={c.wallet}>{short(c.wallet)}</td>
                <td>
                  {c.oldStatus} {c.oldAmount} → {c.newStatus} {c.newAmount}
                </td>
                <td>{c.reason}</td>
                <td class="num">{c.chainId === null ? "—" : `${c.chainId} · ${c.block}`}</td>
                <td>{txLink(c.transaction)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {status.consecutiveErrors > 0 && status.lastError && (
          <p class="badge bad">
            failing ({status.consecutiveErrors}×, {status.lastError.kind} error since {status.lastError.at}; the logs
            say more)
          </p>
        )}
      </body>
    </html>
  );
}

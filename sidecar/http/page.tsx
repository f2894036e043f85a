/**
 * GET /: the status page for people. Rendered on the server, refreshed by a meta refresh (a
 * short poll that needs no JavaScript). Shows wallets shortened and never an email address.
 * Every time is UTC and says so; wallets, hashes and times never wrap.
 */
import type { Alerts } from "../effects/alerts";
import type { ChainStatus, RecentChange, Status } from "../status";

const short = (hex: string) => `${hex.slice(0, 6)}…${hex.slice(-4)}`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** "2026-12-02 15:40:01 UTC": one format for every time on the page. */
const utc = (iso: string) => `${iso.slice(0, 19).replace("T", " ")} UTC`;

function ago(iso: string | null, now: number) {
  if (iso === null) return "never";
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  return seconds < 10 ? `${seconds.toFixed(1)} s ago` : seconds < 120 ? `${Math.round(seconds)} s ago` : utc(iso);
}

/** Share of the way from the start block to the head. */
function progress(done: number | null, start: number, head: number | null) {
  if (done === null || head === null) return 0;
  if (head <= start) return 1;
  return Math.max(0, Math.min(1, (done - start) / (head - start)));
}

const style = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem } h2 { font-size: 1.1rem; margin-top: 2rem }
table { border-collapse: collapse; width: 100% } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e6ec }
td.num, .num { font-variant-numeric: tabular-nums } .nowrap, td.num, code { white-space: nowrap }
.badge { padding: .1rem .5rem; border-radius: 1rem; font-size: .85rem; white-space: nowrap }
.ok { background: #dcf5e3 } .bad { background: #fde2e1 } .warn { background: #fff1cc } .muted { color: #6b7385 }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; font-size: .85rem; color: #6b7385 }
dl.legend dt { font-weight: 600 } dl.legend dd { margin: 0 }
progress { width: 7rem; vertical-align: middle }`;

function ChainRow({ chain, start, maxLag }: { chain: ChainStatus; start: number; maxLag: number }) {
  // Bars say something only while a side catches up: Ponder backfilling, or the sidecar behind
  // by more than MAX_LAG_BLOCKS. Live, the lag in blocks says it better.
  const indexedShare = progress(chain.indexed, start, chain.head);
  const syncedShare = progress(chain.synced, start, chain.head);
  const catchingUp = chain.lagBlocks === null || chain.lagBlocks > maxLag;
  return (
    <tr data-chain={chain.chainId}>
      <td class="num">{chain.chainId}</td>
      <td class="num head">{chain.head ?? "?"}</td>
      <td class="num indexed">
        {chain.indexed ?? "?"}
        {!chain.ponderReady && (
          <>
            {" "}
            <progress class="indexed-bar" max="1" value={indexedShare.toFixed(4)}>
              {Math.round(indexedShare * 100)}%
            </progress>{" "}
            <span class="muted">backfilling</span>
          </>
        )}
      </td>
      <td class="num finalized">{chain.finalized ?? "?"}</td>
      <td class="num synced">
        {chain.synced}
        {catchingUp && (
          <>
            {" "}
            <progress class="synced-bar" max="1" value={syncedShare.toFixed(4)}>
              {Math.round(syncedShare * 100)}%
            </progress>
          </>
        )}
      </td>
      <td class="num lag">
        {chain.lagBlocks === null ? "?" : plural(chain.lagBlocks, "block")}{" "}
        <span class="muted">({plural(chain.confirmations, "confirmation")})</span>
      </td>
    </tr>
  );
}

/** How often the status page reloads itself, in seconds, unless its URL says `?refresh=`. */
const PAGE_REFRESH_S = 3;

export function StatusPage(props: {
  status: Status;
  /** Null (here and below): could not be read this time (a lock held, a read run out). */
  changes: RecentChange[] | null;
  alerts: ReturnType<Alerts["firing"]> | null;
  explorerUrl: string | undefined;
  startBlocks: Map<number, number>;
  maxLagBlocks: number;
  /** Rows of the developers table by status. */
  developerCounts: Record<string, number> | null;
  /** SMTP_URL and MAIL_FROM are set. */
  emailConfigured: boolean;
  /** Shadow mode: rows a write would change; null in write mode. */
  shadow: { differing: number | null } | null;
  /** The page reloads itself every so many seconds; 0: never. */
  refreshSeconds?: number;
  now?: number;
}) {
  const { status, changes, alerts, explorerUrl, developerCounts } = props;
  const now = props.now ?? Date.now();
  const refreshSeconds = props.refreshSeconds ?? PAGE_REFRESH_S;
  const txLink = (hash: string | null) =>
    hash === null ? (
      "—"
    ) : explorerUrl ? (
      <a href={`${explorerUrl.replace(/\/$/, "")}/tx/${hash}`}>{short(hash)}</a>
    ) : (
      short(hash)
    );
  const counts = developerCounts === null ? null : Object.entries(developerCounts);
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        {refreshSeconds > 0 && <meta http-equiv="refresh" content={String(refreshSeconds)} />}
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
          <span class="muted nowrap" id="last-sync">
            last sync {ago(status.lastSyncAt, now)}
          </span>
        </p>

        {props.shadow && (
          <p class="badge warn" id="shadow">
            shadow mode: writes nothing to developers and sends nothing; a write would change{" "}
            {props.shadow.differing === null
              ? "a number of rows not known now (the comparison could not run)"
              : props.shadow.differing === 1
                ? "1 row"
                : `${props.shadow.differing} rows`}{" "}
            (npx stakesync plan lists them)
          </p>
        )}

        {status.settingsDiffer.length > 0 && (
          <p class="badge warn" id="settings-differ">
            sidecars disagree on what to write (each leader applies its own to every row):{" "}
            {status.settingsDiffer.join("; ")}
          </p>
        )}

        {status.ponderNotDurable.length > 0 && (
          <p class="badge warn" id="ponder-not-durable">
            Ponder's commits are not durable in {status.ponderNotDurable.join(", ")}: a PostgreSQL crash may lose its
            last blocks (grant the sidecar's role TRIGGER on Ponder's tables, docs/sql/roles.sql)
          </p>
        )}

        <h2>Chains</h2>
        <table id="chains">
          <thead>
            <tr>
              <th>chain</th>
              <th>head</th>
              <th>indexed by Ponder</th>
              <th>final in Ponder</th>
              <th>synced to developers</th>
              <th>lag</th>
            </tr>
          </thead>
          <tbody>
            {status.chains.map((chain) => (
              <ChainRow
                chain={chain}
                start={(props.startBlocks.get(chain.chainId) ?? 0) - 1}
                maxLag={props.maxLagBlocks}
              />
            ))}
          </tbody>
        </table>
        <dl class="legend">
          <dt>head</dt>
          <dd>the newest block, from the sidecar's RPC poll or Ponder, whichever is further</dd>
          <dt>indexed by Ponder</dt>
          <dd>the block Ponder's rows are complete to; a bar shows its backfill</dd>
          <dt>final in Ponder</dt>
          <dd>Ponder's finalized block: below it Ponder no longer watches for reorgs</dd>
          <dt>synced to developers</dt>
          <dd>the block the developers table equals the chain at: the head minus CONFIRMATIONS once caught up</dd>
          <dt>lag</dt>
          <dd>head minus synced; /ready is 503 above MAX_LAG_BLOCKS ({props.maxLagBlocks})</dd>
        </dl>

        <h2>Alerts</h2>
        {alerts === null ? (
          <p class="muted">not known now (the leader's alerts could not be read)</p>
        ) : alerts.length === 0 ? (
          <p class="muted">none firing</p>
        ) : (
          <ul>
            {alerts.map((a) => (
              <li>
                <span class={`badge ${a.severity === "critical" ? "bad" : "warn"}`}>{a.severity}</span> {a.rule}:{" "}
                {a.text} <span class="muted nowrap">since {utc(a.since)}</span>
              </li>
            ))}
          </ul>
        )}

        <h2>Developers</h2>
        <p id="developer-counts">
          {counts === null
            ? "counts not known now (the developers table could not be read: an application's lock?)"
            : counts.length === 0
              ? "no rows yet"
              : counts.map(([value, n], i) => (
                  <>
                    {i > 0 && " · "}
                    <span class="nowrap" data-status={value}>
                      {value} <b class="num">{n}</b>
                    </span>
                  </>
                ))}
          {(status.developers.queued > 0 || status.developers.refused > 0) && (
            <span class="muted">
              {" "}
              ({status.developers.queued} queued behind application transactions, {status.developers.refused} refused)
            </span>
          )}
          {status.developers.unwritten > 0 && (
            <span class="muted"> ({status.developers.unwritten} wait for the step that ends Ponder's backfill)</span>
          )}
        </p>

        <h2>Welcome emails</h2>
        <p id="outbox">
          {props.emailConfigured ? "" : "not configured (SMTP_URL and MAIL_FROM unset): "}
          {status.outbox.pending} pending · {status.outbox.dead} dead
          {!props.emailConfigured && status.outbox.pending > 0 && (
            <span class="muted"> — they wait in the outbox and go out once SMTP is configured</span>
          )}
        </p>

        <h2>Latest changes to developers</h2>
        <table id="changes">
          <thead>
            <tr>
              <th>when (UTC)</th>
              <th>wallet</th>
              <th>change</th>
              <th>reason</th>
              <th>chain · block</th>
              <th>transaction</th>
            </tr>
          </thead>
          <tbody>
            {changes === null && (
              <tr>
                <td colspan={6} class="muted">
                  not known now (could not be read)
                </td>
              </tr>
            )}
            {(changes ?? []).map((c) => (
              <tr data-wallet={c.wallet}>
                <td class="muted num">{c.at.slice(0, 19).replace("T", " ")}</td>
                <td class="num" title={c.wallet}>
                  <code>{short(c.wallet)}</code>
                </td>
                <td>
                  {c.oldStatus ?? "—"} {c.oldAmount ?? ""} → {c.newStatus} {c.newAmount}
                </td>
                <td>{c.reason}</td>
                <td class="num">{c.chainId === null ? "—" : `${c.chainId} · ${c.block}`}</td>
                <td class="num">
                  <code>{txLink(c.transaction)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {status.consecutiveErrors > 0 && status.lastError && (
          <p class="badge bad">
            failing ({status.consecutiveErrors}×, {status.lastError.kind} error since {utc(status.lastError.at)}; the
            logs say more)
          </p>
        )}
      </body>
    </html>
  );
}

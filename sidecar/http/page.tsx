/** GET /: a server-rendered status page for people; refreshes itself, works without JavaScript. */
import type { Alerts } from "../effects/alerts";
import type { Status } from "../status";

export function StatusPage({
  status,
}: {
  status: Status;
  alerts: ReturnType<Alerts["firing"]>;
  explorerUrl: string | undefined;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="5" />
        <title>stakesync</title>
      </head>
      <body>
        <h1>stakesync</h1>
        <p>
          {status.role} · {status.ready ? "ready" : `not ready: ${status.reason}`}
        </p>
        <table>
          <thead>
            <tr>
              <th>chain</th>
              <th>head</th>
              <th>indexed</th>
              <th>finalized</th>
              <th>synced</th>
              <th>lag</th>
            </tr>
          </thead>
          <tbody>
            {status.chains.map((chain) => (
              <tr>
                <td>{chain.chainId}</td>
                <td>{chain.head ?? "?"}</td>
                <td>{chain.indexed ?? "?"}</td>
                <td>{chain.finalized ?? "?"}</td>
                <td>{chain.synced}</td>
                <td>{chain.lagBlocks ?? "?"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p>
          outbox: {status.outbox.pending} pending, {status.outbox.dead} dead
        </p>
      </body>
    </html>
  );
}

/** Real network peers for the effects tests: an SMTP server, a webhook receiver, an RPC proxy. */
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { SMTPServer } from "smtp-server";
import { freePort } from "../../lib/ports";

export type ReceivedMail = { to: string[]; raw: string; at: number };

/**
 * smtp-server on loopback. `failing` makes it answer 451 to every message; `rejected` addresses
 * are refused at RCPT with the address quoted, as real servers do; `delayMs` holds the answer to
 * each message that long (a slow server); `receiving` counts messages whose data has started.
 */
export async function startSmtp() {
  const port = await freePort();
  const mails: ReceivedMail[] = [];
  const attempts: number[] = [];
  const state = { failing: false, rejected: new Set<string>(), delayMs: 0, receiving: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (!state.rejected.has(address.address)) return callback();
      const error = Object.assign(new Error(`5.1.1 <${address.address}>: Recipient address rejected`), {
        responseCode: 550,
      });
      callback(error);
    },
    onData(stream, session, callback) {
      state.receiving += 1;
      let raw = "";
      stream.on("data", (chunk) => {
        raw += chunk;
      });
      stream.on("end", async () => {
        if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
        attempts.push(Date.now());
        if (state.failing) {
          const error = Object.assign(new Error("try again later"), { responseCode: 451 });
          return callback(error);
        }
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw, at: Date.now() });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    attempts,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export const header = (raw: string, name: string) => raw.match(new RegExp(`^${name}:\\s*(.*)$`, "im"))?.[1]?.trim();

export type Alert = { text: string; severity: string; rule: string; at: string; state: "firing" | "resolved" };

/** Collects alert payloads POSTed to it. */
export async function startWebhook() {
  const port = await freePort();
  const alerts: Alert[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      alerts.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${port}/alerts`, alerts, close: () => server.close() };
}

/**
 * Forwards JSON-RPC to `target`; while `state.down`, fails instead, as `state.failWith` says: a
 * status (503, or 429 as a rate-limiting provider answers), or "silence" (no answer: the request
 * is held and its connection dropped when the outage ends, so the client's timeout decides); holds
 * every answer `state.delayMs` first (a slow provider); while `state.lagBlocks` > 0, serves a node
 * that lags that many blocks behind the head (a backup provider): `eth_blockNumber` and the
 * `latest` block are the lagging node's, everything else is forwarded as asked.
 *
 * WebSockets (`wsUrl`, Ponder's newHeads subscription) are piped to the target byte for byte:
 * `dropWebSockets()` resets every open one, as a provider's load balancer does; while
 * `state.wsRefused`, new ones are refused at the upgrade (503); while `state.wsSilent`, what the
 * target sends is held, not delivered, and delivered in order once it ends (a connection that
 * stays open and says nothing: no close, no error, as a stuck provider does).
 */
export async function startRpcProxy(target: string) {
  const port = await freePort();
  const state = {
    down: false,
    failWith: 503 as 503 | 429 | "silence",
    delayMs: 0,
    lagBlocks: 0,
    wsRefused: false,
    wsSilent: false,
  };
  const upstream = (body: string) =>
    fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
  const lagging = async (body: string) => {
    type Call = { id: unknown; method: string; params?: unknown[] };
    const parsed = JSON.parse(body) as Call | Call[];
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    const head = (
      (await (await upstream(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "eth_blockNumber" }))).json()) as {
        result: string;
      }
    ).result;
    const lagged = `0x${Math.max(0, Number(head) - state.lagBlocks).toString(16)}`;
    const answers = await Promise.all(
      calls.map(async (call) => {
        if (call.method === "eth_blockNumber") return { jsonrpc: "2.0", id: call.id, result: lagged };
        const latest =
          call.method === "eth_getBlockByNumber" && ["latest", "pending"].includes(String(call.params?.[0]));
        const asked = latest ? { ...call, params: [lagged, ...(call.params ?? []).slice(1)] } : call;
        return (await upstream(JSON.stringify(asked))).json();
      }),
    );
    return JSON.stringify(Array.isArray(parsed) ? answers : answers[0]);
  };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", async () => {
      if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
      if (state.down) {
        const failWith = state.failWith;
        if (failWith !== "silence") return res.writeHead(failWith).end("down");
        while (state.down) await new Promise((resolve) => setTimeout(resolve, 100));
        return res.destroy();
      }
      // The node may be gone (a test's cleanup stops it while a held request waits): a 502, as a
      // real gateway answers, not an unhandled rejection in the test run.
      try {
        if (state.lagBlocks > 0) {
          const answer = await lagging(body);
          return res.writeHead(200, { "content-type": "application/json" }).end(answer);
        }
        const answer = await upstream(body);
        res.writeHead(answer.status, { "content-type": "application/json" }).end(await answer.text());
      } catch {
        if (!res.headersSent) res.writeHead(502).end("upstream unreachable");
      }
    });
  });

  /** Each open WebSocket: the client's socket, the target's, and what silence holds back. */
  const sockets = new Set<{ client: Socket; node: Socket; held: Buffer[] }>();
  const { hostname, port: targetPort } = new URL(target);
  server.on("upgrade", (req, client: Socket, head: Buffer) => {
    client.on("error", () => undefined);
    if (state.wsRefused) return client.end("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    const node = connect(Number(targetPort), hostname);
    const pipe = { client, node, held: [] as Buffer[] };
    sockets.add(pipe);
    const close = () => {
      sockets.delete(pipe);
      client.destroy();
      node.destroy();
    };
    node.on("error", close).on("close", close);
    client.on("close", close);
    // The upgrade request as it came (rawHeaders keep the client's names and order).
    const headers = req.rawHeaders.reduce(
      (lines, value, i) => (i % 2 === 0 ? lines : `${lines}${req.rawHeaders[i - 1]}: ${value}\r\n`),
      "",
    );
    node.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n`);
    if (head.length > 0) node.write(head);
    client.on("data", (chunk: Buffer) => node.write(chunk));
    node.on("data", (chunk: Buffer) => {
      if (state.wsSilent) pipe.held.push(chunk);
      else client.write(chunk);
    });
  });
  /** Delivers what silence held back, in order, and lets the WebSockets speak again. */
  const speak = () => {
    state.wsSilent = false;
    for (const pipe of sockets) for (const chunk of pipe.held.splice(0)) pipe.client.write(chunk);
  };

  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    state,
    /** WebSockets open now. */
    webSockets: () => sockets.size,
    /** Resets every open WebSocket; returns how many there were. */
    dropWebSockets: () => {
      const open = sockets.size;
      for (const { client, node } of sockets) {
        client.resetAndDestroy();
        node.destroy();
      }
      return open;
    },
    speak,
    close: () => {
      for (const { client, node } of sockets) {
        client.destroy();
        node.destroy();
      }
      server.close();
    },
  };
}

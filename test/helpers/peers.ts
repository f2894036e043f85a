/** Real network peers for the effects tests: an SMTP server, a webhook receiver, an RPC proxy. */

import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, createServer as createTcpServer, type Socket } from "node:net";
import { SMTPServer } from "smtp-server";
import { type WebSocket, WebSocketServer } from "ws";
import { freePort } from "../../lib/ports";

export type ReceivedMail = { to: string[]; raw: string; at: number };

/**
 * smtp-server on loopback. `failing` makes it answer `failCode` (451, try later, unless told) to
 * every message; `rejected` addresses
 * are refused at RCPT with the address quoted, as real servers do; `delayMs` holds the answer to
 * each message that long (a slow server); `receiving` counts messages whose data has started;
 * `beforeAccepting` runs right before a message is accepted (what else happens at that moment).
 */
export async function startSmtp() {
  const port = await freePort();
  const mails: ReceivedMail[] = [];
  const attempts: number[] = [];
  const state = {
    failing: false,
    failCode: 451,
    rejected: new Set<string>(),
    delayMs: 0,
    receiving: 0,
    beforeAccepting: undefined as (() => Promise<void>) | undefined,
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    // A test that ends with a message still held (delayMs) closes at once, not after 30 s.
    closeTimeout: 100,
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
          const text = state.failCode < 500 ? "try again later" : "transaction failed";
          const error = Object.assign(new Error(text), { responseCode: state.failCode });
          return callback(error);
        }
        await state.beforeAccepting?.();
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
 * A provider in front of `target` (anvil), over HTTP (`url`) and WebSocket (`wsUrl`), with the
 * faults the soak and the tests inject:
 * - `state.down`: every call fails as `state.failWith` says: a status (503, or 429 as a
 *   rate-limiting provider answers; over a WebSocket, a JSON-RPC error), or "silence" (no
 *   answer: the request is held and its connection dropped when the outage ends, so the
 *   client's timeout decides);
 * - `state.delayMs`: every answer is held that long first (a slow provider);
 * - `state.lagBlocks` > 0: a node that lags that many blocks behind the head (a backup
 *   provider): `eth_blockNumber`, the `latest` block and the `newHeads` it announces are the
 *   lagging node's, everything else is answered as asked;
 * - `dropWebSockets()` resets every WebSocket, as a provider's load balancer does; while
 *   `state.wsRefused`, new ones are refused at the upgrade (503); while `state.wsSilent`, they
 *   stay open and say nothing, and `speak()` delivers what was held, in order (no close, no
 *   error: a stuck provider).
 *
 * The WebSocket side is a small JSON-RPC server of its own (the `ws` package, which Ponder uses
 * too): calls are answered as over HTTP, and `eth_subscribe("newHeads")` is served from the
 * head this provider shows (polled from the target every 100 ms, each new head once), so a
 * lagging node lags over both transports.
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
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const upstream = (body: string) =>
    fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
  type Call = { id: unknown; method: string; params?: unknown[] };
  const call = async (method: string, params: unknown[] = []) =>
    ((await (await upstream(JSON.stringify({ jsonrpc: "2.0", id: 0, method, params }))).json()) as { result: unknown })
      .result;
  /** The head this provider shows: the target's, or `lagBlocks` behind it. */
  const shownHead = async () => Math.max(0, Number(await call("eth_blockNumber")) - state.lagBlocks);
  const lagging = async (body: string) => {
    const parsed = JSON.parse(body) as Call | Call[];
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    const lagged = `0x${(await shownHead()).toString(16)}`;
    const answers = await Promise.all(
      calls.map(async (c) => {
        if (c.method === "eth_blockNumber") return { jsonrpc: "2.0", id: c.id, result: lagged };
        const latest = c.method === "eth_getBlockByNumber" && ["latest", "pending"].includes(String(c.params?.[0]));
        const asked = latest ? { ...c, params: [lagged, ...(c.params ?? []).slice(1)] } : c;
        return (await upstream(JSON.stringify(asked))).json();
      }),
    );
    return JSON.stringify(Array.isArray(parsed) ? answers : answers[0]);
  };
  /** A call's answer, as either transport gives it: a status and a body, or none (silence). */
  const answer = async (body: string): Promise<{ status: number; text: string } | undefined> => {
    if (state.delayMs > 0) await sleep(state.delayMs);
    if (state.down) {
      const failWith = state.failWith;
      if (failWith !== "silence") return { status: failWith, text: "down" };
      while (state.down) await sleep(100);
      return undefined;
    }
    // The node may be gone (a test's cleanup stops it while a held request waits): a 502, as a
    // real gateway answers, not an unhandled rejection in the test run.
    try {
      if (state.lagBlocks > 0) return { status: 200, text: await lagging(body) };
      const reply = await upstream(body);
      return { status: reply.status, text: await reply.text() };
    } catch {
      return { status: 502, text: "upstream unreachable" };
    }
  };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", async () => {
      const reply = await answer(body);
      if (!reply) return res.destroy();
      res.writeHead(reply.status, { "content-type": "application/json" }).end(reply.text);
    });
  });

  /** Each open WebSocket: its newHeads subscription, if any, and what silence holds back. */
  const sockets = new Map<WebSocket, { subscription?: string; held: string[] }>();
  const send = (socket: WebSocket, text: string) => {
    const open = sockets.get(socket);
    if (!open) return;
    if (state.wsSilent) open.held.push(text);
    else socket.send(text);
  };
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket: Socket, head: Buffer) => {
    socket.on("error", () => undefined);
    if (state.wsRefused) return socket.end("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(ws, { held: [] });
      ws.on("error", () => undefined);
      ws.on("close", () => sockets.delete(ws));
      ws.on("message", async (data) => {
        const body = data.toString();
        let parsed: Call;
        try {
          parsed = JSON.parse(body) as Call;
        } catch {
          return send(
            ws,
            JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }),
          );
        }
        const open = sockets.get(ws);
        if (open && (parsed.method === "eth_subscribe" || parsed.method === "eth_unsubscribe")) {
          open.subscription = parsed.method === "eth_subscribe" ? `0x${randomBytes(16).toString("hex")}` : undefined;
          return send(ws, JSON.stringify({ jsonrpc: "2.0", id: parsed.id, result: open.subscription ?? true }));
        }
        const reply = await answer(body);
        if (!reply) return ws.terminate();
        const error = { code: -32000, message: reply.text };
        send(ws, reply.status === 200 ? reply.text : JSON.stringify({ jsonrpc: "2.0", id: parsed.id, error }));
      });
    });
  });
  // newHeads: the head this provider shows, each new one announced once (by hash, so a reorg's
  // new fork is announced at heights announced before, as a node does). Announced whether or not
  // the provider is down: Ponder then fetches, and its calls fail.
  let announced: string | undefined;
  const announce = async () => {
    if (![...sockets.values()].some((s) => s.subscription)) return;
    const shown = `0x${(await shownHead()).toString(16)}`;
    const block = (await call("eth_getBlockByNumber", [shown, false])) as { hash: string } | null;
    if (!block || block.hash === announced) return;
    announced = block.hash;
    for (const [socket, { subscription }] of sockets) {
      if (!subscription) continue;
      send(
        socket,
        JSON.stringify({ jsonrpc: "2.0", method: "eth_subscription", params: { subscription, result: block } }),
      );
    }
  };
  let following = true;
  const follow = (async () => {
    while (following) {
      await sleep(100);
      await announce().catch(() => undefined); // the node may be gone: a test's cleanup stops it
    }
  })();

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
      for (const socket of sockets.keys()) socket.terminate();
      return open;
    },
    /** Ends a silence: delivers what it held, in order. */
    speak: () => {
      state.wsSilent = false;
      for (const [socket, open] of sockets) for (const text of open.held.splice(0)) socket.send(text);
    },
    close: async () => {
      following = false;
      await follow;
      for (const socket of sockets.keys()) socket.terminate();
      wss.close();
      server.close();
    },
  };
}

/**
 * A TCP proxy to 127.0.0.1:`targetPort`. `goDark()` stops forwarding on the connections open
 * now, both ways, while keeping them open: as a network that drops a connection's packets (or a
 * NAT that forgot it) looks to both ends. Connections opened later pass.
 */
export async function startTcpProxy(targetPort: number) {
  const pairs = new Set<[Socket, Socket]>();
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    goDark: () => {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    // The dark ones too: paused with data unread, they would never close by themselves.
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

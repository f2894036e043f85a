/**
 * URLs with `user:password@`: a provider's RPC_URL with basic auth (Ponder's viem sends it as a
 * header), a webhook receiver's, a Ponder behind an authenticating proxy. fetch() refuses such a
 * URL, and its error quotes the password: the sidecar's head poll failed every second (/ready
 * 503, rpc_failing for good, the key in every log line), no alert was ever delivered, and a
 * PONDER_URL's password was shown on /ready, /status, the status page and in the alert.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { Alerts } from "../../sidecar/effects/alerts";
import { IndexerWatch } from "../../sidecar/indexer-watch";
import { callRpc, quantity } from "../../sidecar/json-rpc";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import { fakePonder } from "./ponder-fake";

const ends: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end().catch(() => undefined);
});

/** A server that records each request's headers and answers `body`. */
async function recording(body: string) {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ends.push(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server.address() as AddressInfo).port, seen };
}

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString("base64")}`;

it("sends a URL's user:password as basic authorization, as viem does for Ponder: to the provider and to the alert webhook", async () => {
  const node = await recording(JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x2a" }));
  // Before: "Request cannot be constructed from a URL that includes credentials", every second.
  expect(await callRpc([`http://node:k%40y@127.0.0.1:${node.port}/v1`], "eth_blockNumber", [], quantity)).toBe(42n);
  expect(node.seen[0]?.authorization).toBe(basic("node:k@y"));

  const fake = await fakePonder();
  ends.push(() => fake.close());
  const receiver = await recording("{}");
  const alerts = new Alerts({
    webhookUrl: `http://alerts:s3cret@127.0.0.1:${receiver.port}/alerts`,
    repeatMs: 60_000,
    retry: { attempts: 0, delayMs: 0 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
    db: fake.db,
  });
  await alerts.adopt();
  alerts.set("lag", true, "warning", "behind");
  await Promise.all([alerts.flush(), alerts.delivered()]);
  // Before: never delivered.
  expect(receiver.seen.map((h) => h.authorization)).toEqual([basic("alerts:s3cret")]);
});

it("never shows PONDER_URL's password in Ponder's problem, which /ready, /status, the page and the alert carry", async () => {
  const fake = await fakePonder();
  ends.push(() => fake.close());
  const pool = new pg.Pool({ connectionString: fake.url, max: 2 });
  ends.push(() => pool.end());
  // Nothing listens on port 9: unreachable, as Ponder down is.
  const watch = new IndexerWatch(
    { ponderUrl: "http://ponder:hunter2@127.0.0.1:9", ponderSchema: fake.config.ponderSchema, indexerDownAfterMs: 0 },
    pool,
  );
  await watch.observe();
  expect(watch.down()).toBe("http://127.0.0.1:9/health unreachable");
});

/**
 * The sidecar's head polls (sidecar/chain-heads.ts) and the JSON-RPC under them (json-rpc.ts),
 * against nodes of the test's own: a poll answered late must not take the head back, and an
 * answer too large is not read.
 */
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type ChainConfig, loadSidecarConfig } from "../../lib/config";
import { waitFor } from "../../lib/wait";
import { watchHeads } from "../../sidecar/chain-heads";
import { callRpc, MAX_ANSWER_BYTES, quantity } from "../../sidecar/json-rpc";
import { createLogger } from "../../sidecar/log";

const ends: (() => unknown)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end();
});

async function node(listener: RequestListener) {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ends.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const chainOf = (url: string) =>
  loadSidecarConfig({
    CHAIN_ID: "31337",
    RPC_URL: url,
    STAKE_VAULT_ADDRESS: `0x${"5".repeat(40)}`,
    DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
  }).chains[0] as ChainConfig;

describe("the head polls", () => {
  it("never take the head back with a poll answered after a later one (a primary timed out, a fallback behind)", async () => {
    // The first eth_blockNumber is answered after 6 polls' intervals, with block 5; every later
    // one at once, with 10, 11, …
    let asked = 0;
    const url = await node((req, res) => {
      const n = asked++;
      req.resume().on("end", () => {
        const block = n === 0 ? 5 : 9 + n;
        const answer = () =>
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: `0x${block.toString(16)}` }));
        if (n === 0) setTimeout(answer, 300);
        else answer();
      });
    });
    const watch = watchHeads([chainOf(url)], createLogger("silent"), () => undefined, 50);
    ends.push(watch.stop);
    // Every head set, in order.
    const set: number[] = [];
    const setHead = watch.heads.set.bind(watch.heads);
    watch.heads.set = (id, head) => {
      if (head) set.push(head.block);
      return setHead(id, head);
    };
    await waitFor("the late answer's head, and two after it", () => set.includes(5) && set.length >= 3, {
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    // Before, the ticks' polls answered 10, 11, … meanwhile, then the first poll's 5 went over them.
    expect(set).toEqual([...set].sort((a, b) => a - b));
    expect(set[0]).toBe(5);
  });
});

describe("a JSON-RPC answer", () => {
  const big = JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x2a", padding: "x".repeat(2 * MAX_ANSWER_BYTES) });

  it("over 1 MB is refused, declared or chunked, not read into memory", async () => {
    const declared = await node((req, res) => {
      req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(big));
    });
    // Chunked: no Content-Length, 64 KB at a time.
    const chunked = await node((req, res) => {
      req.resume().on("end", async () => {
        res.writeHead(200, { "content-type": "application/json" });
        for (let at = 0; at < big.length && !res.destroyed; at += 65_536) {
          if (!res.write(big.slice(at, at + 65_536))) await new Promise((resolve) => res.once("drain", resolve));
        }
        res.end();
      });
    });
    for (const url of [declared, chunked]) {
      // Before, the whole answer was read and parsed: 42.
      await expect(callRpc([url], "eth_blockNumber", [], quantity)).rejects.toThrow(
        `HTTP 200: an answer over ${MAX_ANSWER_BYTES} bytes, not read`,
      );
    }
    // One under it is read.
    const small = await node((req, res) => {
      req.resume().on("end", () => res.writeHead(200).end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x2a" })));
    });
    expect(await callRpc([small], "eth_blockNumber", [], quantity)).toBe(42n);
  });
});

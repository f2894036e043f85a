/**
 * The vault's check at start (sidecar/vault-check.ts) against fake JSON-RPC nodes of the test's
 * own, for the answers a real anvil does not give (test/vault-check.test.ts has those): a rate
 * limit's 429 with a JSON-RPC error body, "header not found" from a balancer's member behind, and
 * a fallback URL of another chain.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type ChainConfig, loadSidecarConfig } from "../../lib/config";
import {
  checkAgainUntilDecided,
  checkVault,
  DECIMALS_SELECTOR,
  TOKEN_SELECTOR,
  type VaultCheck,
} from "../../sidecar/vault-check";

const VAULT = `0x${"5".repeat(40)}`;
const TOKEN = `0x${"7".repeat(40)}`;
const word = (hex: string) => `0x${hex.replace(/^0x/, "").padStart(64, "0")}`;

type Answer = { status?: number; body: Record<string, unknown> };

const ends: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const end of ends.splice(0).reverse()) await end().catch(() => undefined);
});

/**
 * A node answering eth_chainId `chainId`, a head at block 100, the vault's code, the vault's
 * token() with TOKEN, the token's decimals() with 6, unless `override` answers the request first.
 * Its URL carries a path like a provider's API key, which no verdict may show.
 */
async function fakeNode(
  chainId: number,
  override: (method: string, data?: string) => Answer | undefined = () => undefined,
) {
  const server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    const { method, params } = JSON.parse(text) as { method: string; params: [{ data?: string }?] };
    const data = params[0]?.data;
    const result = (result: unknown): Answer => ({ body: { result } });
    const answer =
      override(method, data) ??
      (method === "eth_chainId"
        ? result(`0x${chainId.toString(16)}`)
        : method === "eth_blockNumber"
          ? result("0x64")
          : method === "eth_getCode"
            ? result("0x6080604052")
            : method === "eth_call" && data === TOKEN_SELECTOR
              ? result(word(TOKEN))
              : method === "eth_call" && data === DECIMALS_SELECTOR
                ? result(word("6"))
                : { body: { error: { code: -32601, message: "method not found" } } });
    res
      .writeHead(answer.status ?? 200, { "content-type": "application/json" })
      .end(JSON.stringify({ jsonrpc: "2.0", id: 1, ...answer.body }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ends.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3/s3cr3t-api-key`;
}

/** The chain 31337 as CHAINS=31337 reads it, with these URLs, from block 0 (no totalStaked()). */
const chain = (...urls: string[]) =>
  loadSidecarConfig({
    CHAINS: "31337",
    RPC_URL_31337: urls.join(","),
    STAKE_VAULT_ADDRESS_31337: VAULT,
    DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
  }).chains[0] as ChainConfig;

const rateLimited: Answer = {
  status: 429,
  body: { error: { code: -32005, message: "daily request count exceeded, request rate limited" } },
};
const headerNotFound: Answer = { body: { error: { code: -32000, message: "header not found" } } };

describe("the check of STAKE_DECIMALS", () => {
  it("is no verdict when token() or decimals() is answered with a rate limit's 429 or 'header not found': unchecked, never ok", async () => {
    for (const [call, answer] of [
      [TOKEN_SELECTOR, rateLimited],
      [TOKEN_SELECTOR, headerNotFound],
      [DECIMALS_SELECTOR, rateLimited],
      [DECIMALS_SELECTOR, headerNotFound],
    ] as const) {
      const url = await fakeNode(31337, (method, data) =>
        method === "eth_call" && data === call ? answer : undefined,
      );
      // STAKE_DECIMALS 18 for a token of 6: asked, the check says "wrong". Before, the error
      // answer read as "no token()" (or no decimals()), the decimals went uncompared, and "ok".
      const verdict = await checkVault(chain(url), 18);
      expect(verdict, `${call}: ${JSON.stringify(answer)}`).toMatchObject({ outcome: "unchecked" });
      expect(verdict.outcome === "unchecked" && verdict.reason).toMatch(
        answer === rateLimited
          ? /unanswered, so STAKE_DECIMALS unchecked: daily request count exceeded, request rate limited \(HTTP 429, code -32005\)$/
          : /unanswered, so STAKE_DECIMALS unchecked: header not found \(HTTP 200, code -32000\)$/,
      );
    }
  });

  it("still skips a vault or token whose call the node says reverted (no such function)", async () => {
    for (const error of [
      { code: 3, message: "execution reverted" },
      { code: -32000, message: "execution reverted" },
    ]) {
      const url = await fakeNode(31337, (method) => (method === "eth_call" ? { body: { error } } : undefined));
      expect(await checkVault(chain(url), 18)).toEqual({ chainId: 31337, outcome: "ok" });
    }
    // And compares the decimals when both answer.
    expect(await checkVault(chain(await fakeNode(31337)), 18)).toMatchObject({ outcome: "wrong" });
    expect(await checkVault(chain(await fakeNode(31337)), 6)).toEqual({ chainId: 31337, outcome: "ok" });
  });
  it("is asked again, its wait doubling, until the provider gives a verdict: a wrong STAKE_DECIMALS is not left unseen", async () => {
    let limited = 3;
    const asked: number[] = [];
    const url = await fakeNode(31337, (method, data) => {
      if (method !== "eth_call" || data !== TOKEN_SELECTOR) return undefined;
      asked.push(performance.now());
      return limited-- > 0 ? rateLimited : undefined;
    });
    expect(await checkVault(chain(url), 18)).toMatchObject({ outcome: "unchecked" });
    const verdict = await new Promise<VaultCheck>((resolve) => {
      checkAgainUntilDecided(chain(url), 18, resolve, { firstMs: 50 });
    });
    expect(verdict).toMatchObject({ outcome: "wrong" });
    expect(verdict.outcome === "wrong" && verdict.reason).toMatch(/STAKE_DECIMALS/);
    expect(asked).toHaveLength(4); // the start's, two more left undone, then the verdict
    // Twice as long each time: 50, then 100, then 200 ms (at least).
    expect((asked[3] ?? 0) - (asked[2] ?? 0)).toBeGreaterThanOrEqual(190);
  });

  it("stops asking again once stopped (the sidecar stops)", async () => {
    const asked: number[] = [];
    const url = await fakeNode(31337, (method, data) => {
      if (method === "eth_call" && data === TOKEN_SELECTOR) asked.push(1);
      return method === "eth_call" ? rateLimited : undefined;
    });
    const stop = checkAgainUntilDecided(chain(url), 18, () => undefined, { firstMs: 50 });
    stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(asked).toHaveLength(0);
  });
});

describe("the check of the RPC URLs' chain", () => {
  it("refuses a fallback URL of another chain, named by its variable and position, not by itself", async () => {
    const good = await fakeNode(31337);
    const other = await fakeNode(1);
    // Before, only the first URL that answered was asked: "ok", and Ponder's fallback and the
    // sidecar's head poll read chain 1 whenever the first URL failed.
    const verdict = await checkVault(chain(good, other), 6);
    expect(verdict).toMatchObject({ outcome: "wrong" });
    expect(verdict.outcome === "wrong" && verdict.reason).toMatch(
      /^RPC_URL_31337, URL 2 of 2 answers chain 1, not 31337: /,
    );
    expect(JSON.stringify(verdict)).not.toMatch(/127\.0\.0\.1|s3cr3t/);
    // The primary of another chain, the same.
    const first = await checkVault(chain(other, good), 6);
    expect(first.outcome === "wrong" && first.reason).toMatch(
      /^RPC_URL_31337, URL 1 of 2 answers chain 1, not 31337: /,
    );
  });

  it("does not take a URL that does not answer for one of another chain: it says so, and checks on the others", async () => {
    const good = await fakeNode(31337);
    // Nothing listens on port 1: refused, as a provider down.
    const verdict = await checkVault(chain("http://127.0.0.1:1/v3/s3cr3t-api-key", good), 6);
    expect(verdict).toEqual({
      chainId: 31337,
      outcome: "ok",
      unanswered: ["RPC_URL_31337, URL 1 of 2: fetch failed"],
    });
    const none = await checkVault(chain("http://127.0.0.1:1/v3/s3cr3t-api-key"), 6);
    expect(none).toMatchObject({
      outcome: "unchecked",
      reason: "no URL answered eth_chainId (RPC_URL_31337, URL 1 of 1: fetch failed)",
    });
    expect(JSON.stringify([verdict, none])).not.toMatch(/127\.0\.0\.1|s3cr3t/);
  });
});

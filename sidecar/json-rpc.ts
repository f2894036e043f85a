/**
 * Plain JSON-RPC over fetch, to a chain's RPC URLs (fallbacks in order): the sidecar asks a node
 * for its head (chain-heads.ts) and, once at start, about the vault (vault-check.ts). viem would
 * add ~55 MB to its memory.
 */
import { fetchUrl } from "../lib/fetch-url";

/**
 * A node's own error answer (a revert, a pruned state, a rate limit, "header not found"), not a
 * failure to reach it; with the HTTP status it came with and its JSON-RPC `code`. Only some of
 * them say anything about the call itself: see `reverted`.
 */
export class RpcAnswerError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: unknown,
  ) {
    super(message);
    this.name = "RpcAnswerError";
  }
}

/**
 * Whether an error is the node saying the call itself reverted (a contract without the function,
 * or one that refuses it): an answer with HTTP 200 and code 3, or a message saying "revert"
 * (geth answers a revert without data with -32000 "execution reverted"). Not a provider's 429
 * with a JSON error body (Infura's -32005), nor "header not found" from a node behind a balancer
 * that lags: taken for a revert, those passed the decimals check without it being made.
 */
export const reverted = (error: unknown) =>
  error instanceof RpcAnswerError && error.status === 200 && (error.code === 3 || /revert/i.test(error.message));

/**
 * The most of an answer read: the sidecar's questions are answered in under a kilobyte, and an
 * endpoint that misbehaves (a proxy's error page in a loop, a wrong URL serving a file) must not
 * push hundreds of MB into the sidecar's memory, once a second for each head poll.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** The answer's body as text, refused once it passes `max` bytes (declared or read). */
async function readCapped(response: Response, max: number): Promise<string> {
  const over = () => new Error(`HTTP ${response.status}: an answer over ${max} bytes, not read`);
  if (Number(response.headers.get("content-length")) > max) {
    await response.body?.cancel().catch(() => undefined);
    throw over();
  }
  if (!response.body) return "";
  // Chunked answers declare no length: counted as they come, and the rest never read.
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw over();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The result, as `parse` reads it, of the first URL that answers one it can read: a URL whose
 * answer fails or does not parse gives way to the next. The last failure is thrown; a node's own
 * error answer as RpcAnswerError.
 */
export async function callRpc<T>(
  urls: string[],
  method: string,
  params: unknown[],
  parse: (result: unknown) => T,
  timeoutMs = 5000,
): Promise<T> {
  let lastError: unknown;
  for (const url of urls) {
    try {
      const response = await fetchUrl(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = JSON.parse(await readCapped(response, MAX_ANSWER_BYTES)) as {
        result?: unknown;
        error?: { message: string; code?: unknown };
      };
      if (body.result !== undefined) return parse(body.result);
      if (body.error) throw new RpcAnswerError(String(body.error.message), response.status, body.error.code);
      throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** A hex quantity or data word (`0x…`) as a bigint; anything else throws. */
export function quantity(result: unknown): bigint {
  if (typeof result !== "string" || !/^0x[0-9a-fA-F]+$/.test(result)) {
    throw new Error(`expected a hex number, got ${JSON.stringify(result)?.slice(0, 80)}`);
  }
  return BigInt(result);
}

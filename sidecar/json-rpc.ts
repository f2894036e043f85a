/**
 * Plain JSON-RPC over fetch, to a chain's RPC URLs (fallbacks in order): the sidecar asks a node
 * for its head (chain-heads.ts) and, once at start, about the vault (vault-check.ts). viem would
 * add ~55 MB to its memory.
 */
import { fetchUrl } from "../lib/fetch-url";

/** A node's own answer that the call failed (a revert, a pruned state), not a failure to reach it. */
export class RpcAnswerError extends Error {}

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
      const body = (await response.json()) as { result?: unknown; error?: { message: string } };
      if (body.result !== undefined) return parse(body.result);
      if (body.error) throw new RpcAnswerError(body.error.message);
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

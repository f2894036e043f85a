/**
 * Thrown by a `waitFor` check to end the wait at once with this error instead of trying again
 * until the timeout: for a process that has exited, which will not become ready.
 */
export class WaitAborted extends Error {
  override name = "WaitAborted";
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`, or a check's `WaitAborted` at once. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  { timeoutMs = 30_000, intervalMs = 100 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof WaitAborted) throw error;
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

/**
 * `answer`, or an error "no answer within …" once `ms` have passed without it: for a question to
 * a server that may have gone dark, whose client would otherwise wait for TCP to give up. The
 * question goes on, unheard, and so does its failure after the deadline.
 */
export function answeredWithin<T>(answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  answer.catch(() => undefined);
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

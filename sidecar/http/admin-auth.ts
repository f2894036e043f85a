/** Bearer-token guard for /admin/*: 404 when no ADMIN_TOKEN is configured, 401 when absent or wrong. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";

/** Below this length ADMIN_TOKEN is guessable enough to be warned of at start. */
export const SHORT_ADMIN_TOKEN = 16;

const digest = (value: string) => createHash("sha256").update(value).digest();

export function adminAuth(token: string | undefined): MiddlewareHandler {
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    if (!expected) return c.json({ error: "not found" }, 404);
    const header = c.req.header("authorization") ?? "";
    // The scheme's name is case-insensitive (RFC 9110, 11.1): "bearer <token>" is as good.
    const given = /^bearer +(.+)$/i.exec(header)?.[1] ?? "";
    // Hashing first makes the comparison constant-time whatever the lengths.
    if (!timingSafeEqual(digest(given), expected)) {
      return c.json({ error: "unauthorized: send Authorization: Bearer <ADMIN_TOKEN>" }, 401, {
        "WWW-Authenticate": "Bearer",
      });
    }
    await next();
  };
}

/** Bearer-token guard for /admin/*: 404 when no ADMIN_TOKEN is configured, 401 when absent or wrong. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";

const digest = (value: string) => createHash("sha256").update(value).digest();

export function adminAuth(token: string | undefined): MiddlewareHandler {
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    if (!expected) return c.json({ error: "not found" }, 404);
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    // Hashing first makes the comparison constant-time whatever the lengths.
    if (!timingSafeEqual(digest(given), expected)) {
      return c.json({ error: "unauthorized: send Authorization: Bearer <ADMIN_TOKEN>" }, 401, {
        "WWW-Authenticate": "Bearer",
      });
    }
    await next();
  };
}

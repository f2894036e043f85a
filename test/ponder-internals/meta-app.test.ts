/**
 * Assumption: `_ponder_meta` has a row key = 'app' whose JSON value carries is_ready (1 once
 * /ready answers 200), is_locked (1 while the instance runs), heartbeat_at (epoch milliseconds,
 * refreshed about every 10 s, which the test waits for) and build_id (a string). The sidecar reads is_ready and heartbeat_at.
 */
import { afterAll, describe, expect, it } from "vitest";
import { cleanup, sql, startStack } from "./harness";

afterAll(cleanup);

describe("meta-app", () => {
  it("_ponder_meta 'app' value has is_ready 1 once /ready is 200, is_locked 1 while running, heartbeat_at in epoch ms, build_id a string", async () => {
    const { databaseUrl, schema, ponder } = await startStack();

    expect(
      (await fetch(`${ponder.url}/ready`)).status,
      "assumption meta-app: Ponder's /ready answers 200 once it has backfilled (the test reads is_ready beside it)",
    ).toBe(200);
    const rows = await sql<{ value: Record<string, unknown> }>(
      databaseUrl,
      `SELECT value FROM "${schema}"._ponder_meta WHERE key = 'app'`,
    );
    expect(rows.length, "assumption meta-app: _ponder_meta has one row with key 'app'").toBe(1);
    const app = rows[0]!.value;
    expect(app.is_ready, "assumption meta-app: _ponder_meta app value.is_ready is 1 once /ready answers 200").toBe(1);
    expect(app.is_locked, "assumption meta-app: _ponder_meta app value.is_locked is 1 while Ponder runs").toBe(1);
    expect(typeof app.build_id, "assumption meta-app: _ponder_meta app value.build_id is a string").toBe("string");
    expect((app.build_id as string).length, "assumption meta-app: build_id is not empty").toBeGreaterThan(0);

    const now = Date.now();
    expect(typeof app.heartbeat_at, "assumption meta-app: _ponder_meta app value.heartbeat_at is a number").toBe(
      "number",
    );
    const heartbeat = app.heartbeat_at as number;
    // Written when Ponder took the schema (after it was spawned), then about every 10 s: epoch
    // milliseconds within the last minute (seconds would be ~1000 times smaller).
    expect(
      heartbeat >= ponder.startedAt - 1_000 && heartbeat <= now + 5_000 && now - heartbeat <= 60_000,
      `assumption meta-app: heartbeat_at is a recent epoch-millisecond timestamp (got ${heartbeat}, now ${now}, ponder started ${ponder.startedAt})`,
    ).toBe(true);

    // And refreshed while Ponder runs: the sidecar counts a Ponder whose heartbeat stood still
    // for INDEXER_DOWN_AFTER_MS (30 s) as down. The first reading alone, taken at the start, would
    // pass a Ponder that wrote it once.
    const readHeartbeat = async () =>
      (
        await sql<{ at: number }>(
          databaseUrl,
          `SELECT (value->>'heartbeat_at')::bigint AS at FROM "${schema}"._ponder_meta WHERE key = 'app'`,
        )
      )[0]?.at;
    const waitedFrom = Date.now();
    let next = Number(await readHeartbeat());
    while (next === heartbeat && Date.now() - waitedFrom < 25_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      next = Number(await readHeartbeat());
    }
    expect(
      next > heartbeat,
      `assumption meta-app: heartbeat_at is refreshed within 25 s while Ponder runs (still ${heartbeat} after ${Date.now() - waitedFrom} ms)`,
    ).toBe(true);
  });
});

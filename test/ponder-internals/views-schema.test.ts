/**
 * Assumption: `ponder start --views-schema <v>` creates, by the time /ready answers 200, views
 * `<v>`.stake_event, `<v>`._ponder_checkpoint and `<v>`._ponder_meta over its own schema, and
 * NOTIFYs `<v>_live_query` when it commits a realtime block. Production runs the sidecar against
 * the views schema (PONDER_VIEWS_SCHEMA), so a redeploy switches it over in one transaction.
 */
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { cleanup, listen, sql, startStack } from "./harness";

afterAll(cleanup);

describe("views-schema", () => {
  it('ponder start --views-schema <v> creates views stake_event, _ponder_checkpoint, _ponder_meta in <v> once ready, and NOTIFYs "<v>_live_query" on a new block', async () => {
    const views = `pv_${Math.random().toString(36).slice(2, 10)}`;
    const { chain, databaseUrl, schema, developers } = await startStack({ ponderArgs: ["--views-schema", views] });

    const found = await sql<{ table_name: string }>(
      databaseUrl,
      "SELECT table_name FROM information_schema.views WHERE table_schema = $1 ORDER BY table_name",
      [views],
    );
    const names = found.map((r) => r.table_name);
    for (const name of ["_ponder_checkpoint", "_ponder_meta", "stake_event"]) {
      expect(
        names,
        `assumption views-schema: --views-schema creates view ${views}.${name} once Ponder is ready`,
      ).toContain(name);
    }
    const [counts] = await sql<{ base: string; view: string; same_checkpoint: boolean }>(
      databaseUrl,
      `SELECT (SELECT count(*) FROM "${schema}".stake_event)::text AS base,
              (SELECT count(*) FROM "${views}".stake_event)::text AS view,
              (SELECT latest_checkpoint FROM "${views}"._ponder_checkpoint) =
              (SELECT latest_checkpoint FROM "${schema}"._ponder_checkpoint) AS same_checkpoint`,
    );
    expect(Number(counts?.base)).toBeGreaterThan(0);
    expect(counts?.view, `assumption views-schema: ${views}.stake_event shows ${schema}.stake_event`).toBe(
      counts?.base,
    );
    expect(counts?.same_checkpoint, `assumption views-schema: ${views}._ponder_checkpoint shows ${schema}'s`).toBe(
      true,
    );

    const listener = await listen(databaseUrl, `${views}_live_query`);
    try {
      await chain.vault.stakeFor(developers[2]!, 9n);
      let received = true;
      await waitFor("a notification on the views schema's live query channel", () => listener.payloads.length > 0, {
        timeoutMs: 60_000,
      }).catch(() => {
        received = false;
      });
      expect(
        received,
        `assumption views-schema: LISTEN "${views}_live_query" receives a NOTIFY when Ponder commits a realtime block`,
      ).toBe(true);
      console.log(`views-schema: payloads ${JSON.stringify(listener.payloads)}`);
    } finally {
      await listener.stop();
    }
  });
});

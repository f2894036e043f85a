/**
 * Assumption: Ponder builds the indexes of ponder.schema.ts on stake_event once its backfill has
 * committed its last batch and before it turns ready (is_ready 0 throughout), with a plain
 * CREATE INDEX that holds a SHARE lock on stake_event, and commits no backfill batch after.
 * The sidecar takes that lock, seen in pg_locks while Ponder is not ready, as the end of the
 * backfill: its last catch-up step runs beside the index build instead of after /ready
 * (read-progress.ts `indexing`). Observed with an event trigger on CREATE INDEX, which runs in
 * Ponder's own transaction.
 */
import { afterAll, describe, expect, it } from "vitest";
import { cleanup, head, sql, startStack } from "./harness";

/** Ponder's finality for chain 31337: its backfill ends this far below the head it saw at start. */
const FINALITY_BLOCKS = 30;

afterAll(cleanup);

type Build = { is_ready: string | null; block: string; events: string; share_lock: boolean };

describe("backfill-indexes", () => {
  it("Ponder builds stake_event's indexes after its last backfill batch, not ready yet, holding a SHARE lock on stake_event", async () => {
    const { chain, databaseUrl, schema } = await startStack({
      beforePonder: async (url, schema) => {
        await sql(
          url,
          `CREATE SCHEMA obs;
           CREATE TABLE obs.index_build (is_ready text, block bigint, events bigint, share_lock boolean);
           CREATE FUNCTION obs.on_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
           DECLARE
             command record;
           BEGIN
             FOR command IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
               IF command.command_tag = 'CREATE INDEX' AND EXISTS (
                    SELECT 1 FROM pg_index i WHERE i.indexrelid = command.objid
                       AND i.indrelid = to_regclass('"${schema}".stake_event')) THEN
                 INSERT INTO obs.index_build
                 SELECT (SELECT value->>'is_ready' FROM "${schema}"._ponder_meta WHERE key = 'app'),
                        (SELECT max(substring(latest_checkpoint from 27 for 16)::bigint) FROM "${schema}"._ponder_checkpoint),
                        (SELECT count(*) FROM "${schema}".stake_event),
                        EXISTS (SELECT 1 FROM pg_locks l
                                 WHERE l.relation = to_regclass('"${schema}".stake_event') AND l.pid = pg_backend_pid()
                                   AND l.mode = 'ShareLock' AND l.granted);
               END IF;
             END LOOP;
           END $$;
           CREATE EVENT TRIGGER obs_index ON ddl_command_end WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION obs.on_index();`,
        );
      },
    });
    const builds = await sql<Build>(
      databaseUrl,
      "SELECT is_ready, block::text, events::text, share_lock FROM obs.index_build",
    );
    expect(
      builds.length,
      "assumption backfill-indexes: Ponder creates ponder.schema.ts's indexes on stake_event (two) at its start",
    ).toBe(2);
    // Nothing was mined since Ponder started: the backfill's last batch is at the head less its finality.
    const backfillEnd = (await head(chain)) - FINALITY_BLOCKS;
    for (const build of builds) {
      expect(
        Number(build.block),
        `assumption backfill-indexes: the index build comes after the backfill's last batch, its checkpoint at the backfill's end (block ${backfillEnd})`,
      ).toBe(backfillEnd);
      expect(
        build.is_ready,
        "assumption backfill-indexes: Ponder builds stake_event's indexes while is_ready is still 0",
      ).not.toBe("1");
      expect(
        build.share_lock,
        "assumption backfill-indexes: the CREATE INDEX holds a SHARE lock on stake_event (not CONCURRENTLY)",
      ).toBe(true);
      // Every event of the backfill's blocks was there already: none committed in them since.
      const [after] = await sql<{ n: string }>(
        databaseUrl,
        `SELECT count(*)::text AS n FROM "${schema}".stake_event WHERE block_number <= $1`,
        [build.block],
      );
      expect(
        after?.n,
        `assumption backfill-indexes: the index build comes after the backfill's last batch (checkpoint block ${build.block}; ${build.events} events then)`,
      ).toBe(build.events);
      expect(
        Number(build.events),
        "assumption backfill-indexes: the backfill indexed the workload first",
      ).toBeGreaterThan(0);
    }
  });
});

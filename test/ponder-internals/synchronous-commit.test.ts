/**
 * Assumption: Ponder commits its events with `synchronous_commit` off (its pool sets it on every
 * connection: Ponder 0.17.7, utils/pg.ts), so a PostgreSQL crash can take back its last blocks
 * while it runs on; and the sidecar's statement trigger on stake_event (durable-ponder.ts,
 * migrations 018 and 019) turns it back to the session's default inside Ponder's own transactions,
 * at least `local` (this throwaway cluster runs with it off), which then wait for the local WAL
 * flush. Should the first change (Ponder commits synchronously), the trigger is
 * harmless; should the second, Ponder's blocks are again lost to a crash.
 *
 * Observed with triggers that log current_setting('synchronous_commit') in Ponder's transaction:
 * a row trigger (before the statement's end) and a statement trigger that fires after the
 * sidecar's (triggers fire in name order).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../lib/config";
import { makeCommitsDurable } from "../../sidecar/sync/durable-ponder";
import { cleanup, sql, startStack, waitIndexed } from "./harness";

afterAll(cleanup);

describe("synchronous-commit", () => {
  it("Ponder writes its events with synchronous_commit off, and the sidecar's trigger makes its transaction commit with local", async () => {
    const { chain, databaseUrl, schema, ponder, developers } = await startStack();
    await sql(
      databaseUrl,
      `CREATE SCHEMA IF NOT EXISTS stakesync;
       ${["018_durable_ponder_commits.sql", "019_durable_as_the_server.sql"]
         .map((file) => readFileSync(path.join(repoRoot, "sidecar", "migrations", file), "utf8"))
         .join("\n")}
       CREATE TABLE public.sync_seen (at text, setting text);
       CREATE FUNCTION public.sync_seen() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO public.sync_seen VALUES (TG_ARGV[0], current_setting('synchronous_commit')); RETURN NULL; END $$;
       CREATE TRIGGER a_row AFTER INSERT ON "${schema}".stake_event FOR EACH ROW EXECUTE FUNCTION public.sync_seen('row');
       CREATE TRIGGER zz_statement AFTER INSERT ON "${schema}".stake_event FOR EACH STATEMENT EXECUTE FUNCTION public.sync_seen('statement')`,
    );
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const [{ oid } = { oid: "" }] = await sql<{ oid: string }>(
        databaseUrl,
        `SELECT to_regclass('"${schema}".stake_event')::oid::text AS oid`,
      );
      expect(await makeCommitsDurable(db, oid)).toBeNull();
    } finally {
      await db.end();
    }
    await chain.vault.stakeFor(developers[1] as `0x${string}`, 7n);
    await waitIndexed(databaseUrl, schema, chain, ponder);
    const seen = await sql<{ at: string; setting: string }>(databaseUrl, "SELECT at, setting FROM public.sync_seen");
    expect(
      seen.find((s) => s.at === "row")?.setting,
      `assumption synchronous-commit: Ponder writes its events with synchronous_commit off (seen: ${JSON.stringify(seen)})`,
    ).toBe("off");
    expect(
      seen.find((s) => s.at === "statement")?.setting,
      `assumption synchronous-commit: the sidecar's statement trigger sets synchronous_commit local in Ponder's transaction (seen: ${JSON.stringify(seen)})`,
    ).toBe("local");
  });
});

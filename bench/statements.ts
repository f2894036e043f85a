/**
 * `npm run bench -- --statements`: where PostgreSQL's time went in each backfill run. The lab's
 * PostgreSQL then preloads pg_stat_statements; each run zeroes its counters as it starts and, as
 * it ends, leaves bench/.cache/logs/statements-<schema>.txt (the statements by total time, with
 * calls and rows) and puts the total in its result. Counters are the cluster's: the bench's own
 * checks count too, a few milliseconds. Time is the statements' execution time: a statement that
 * waits for a lock or for the CPU counts its wait.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../lib/config";
import { queryOnce as query } from "../lib/query-once";

const logDir = path.join(repoRoot, "bench", ".cache", "logs");

/** Zeroes the counters (creating the extension's views in this database the first time). */
export async function zeroStatements(url: string) {
  await query(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()");
}

/** The run's statements into its file; its total time in seconds and calls for the result. */
export async function statementsOf(url: string, schema: string) {
  const rows = await query<{ ms: number; calls: string; rows: string; query: string }>(
    url,
    `SELECT total_exec_time AS ms, calls, rows, regexp_replace(query, '\\s+', ' ', 'g') AS query
       FROM pg_stat_statements ORDER BY total_exec_time DESC`,
  );
  const lines = rows.map((r) => `${r.ms.toFixed(1)} ms\t${r.calls} calls\t${r.rows} rows\t${r.query.slice(0, 400)}`);
  writeFileSync(
    path.join(logDir, `statements-${schema}.txt`),
    `${["total ms\tcalls\trows\tstatement", ...lines].join("\n")}\n`,
  );
  return {
    seconds: Math.round(rows.reduce((sum, r) => sum + r.ms, 0)) / 1000,
    calls: rows.reduce((sum, r) => sum + Number(r.calls), 0),
  };
}

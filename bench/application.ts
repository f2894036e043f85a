/**
 * The application's side of the bench: its developers table (as the sidecar creates it), every
 * developer registered, the ground truth to compare with, and the checks that say the sidecar is done.
 */
import type pg from "pg";
import { queryOnce as query } from "../lib/query-once";
import { createDevelopersTable } from "../sidecar/db/developers-table";
import { createLogger } from "../sidecar/log";
import type { Workload } from "./workload";

/** Registers every developer and loads the ground truth for the comparison query. */
export async function prepareApplication(url: string, workload: Workload) {
  await createDevelopersTable(url, createLogger("warn"));
  await query(url, "CREATE TABLE IF NOT EXISTS bench_truth (wallet text PRIMARY KEY, amount numeric NOT NULL)");
  await query(url, "INSERT INTO developers (wallet_address) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", [
    workload.developers,
  ]);
  await query(url, "INSERT INTO bench_truth SELECT * FROM unnest($1::text[], $2::numeric[]) ON CONFLICT DO NOTHING", [
    Object.keys(workload.truth),
    Object.values(workload.truth),
  ]);
}

export async function resetSidecar(url: string) {
  await query(
    url,
    `DROP SCHEMA IF EXISTS stakesync CASCADE;
     UPDATE developers SET status = 'pending', stake_amount = 0, staked_at = NULL`,
  );
}

/** Developers whose stake_amount differs from the ground truth. */
export async function mismatches(db: pg.Client): Promise<number> {
  const {
    rows: [row],
  } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM developers d LEFT JOIN bench_truth t ON t.wallet = lower(d.wallet_address)
      WHERE d.stake_amount <> coalesce(t.amount, 0) / 1000000`,
  );
  return Number(row?.n);
}

/**
 * The sidecar's cursor has passed the workload's last event (once Ponder is ready): a cheap check
 * first, so the comparison with the ground truth does not load the machine while the sidecar works.
 */
export async function cursorPastEvents(db: pg.Client, workload: Workload): Promise<boolean> {
  const { rows } = await db
    .query<{ past: boolean | null }>("SELECT max(block) >= $1 AS past FROM stakesync.cursor", [workload.head])
    .catch(() => ({ rows: [] }));
  return rows[0]?.past === true;
}

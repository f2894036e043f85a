/**
 * Scenario (f): the floor under (b), measured (bench/baselines/floor.mjs): Ponder and a process
 * that only writes every developer once Ponder has indexed the chain's last event. What the
 * cached and cold goals leave for a sidecar is what (f) costs Ponder less what (b) does.
 */
import path from "node:path";
import pg from "pg";
import { loadSidecarConfig, repoRoot } from "../../lib/config";
import { ponderAnswering, throwIfExited } from "../../lib/local/process";
import { ponderReady } from "../../lib/local/stack";
import { queryOnce as query } from "../../lib/query-once";
import { waitFor } from "../../lib/wait";
import { tokenFactor } from "../../sidecar/sync/sql/fragments";
import { mismatches } from "../application";
import type { Lab } from "../lab";
import { cpuSplit, seconds } from "../stats";
import type { Workload } from "../workload";

/** Its own audit and outbox, shaped like the sidecar's where the write touches them. */
const FLOOR_TABLES = `
  CREATE SCHEMA IF NOT EXISTS floor;
  CREATE TABLE IF NOT EXISTS floor.audit (id bigserial PRIMARY KEY, wallet text NOT NULL, old_status text,
    new_status text NOT NULL, old_amount numeric, new_amount numeric NOT NULL, reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX IF NOT EXISTS audit_wallet_idx ON floor.audit (wallet, id);
  CREATE TABLE IF NOT EXISTS floor.outbox (id bigserial PRIMARY KEY, kind text NOT NULL, wallet text NOT NULL,
    state text NOT NULL DEFAULT 'pending', run_at timestamptz NOT NULL DEFAULT now(), UNIQUE (kind, wallet));
  CREATE INDEX IF NOT EXISTS outbox_due_idx ON floor.outbox (run_at) WHERE state = 'pending';
  CREATE TABLE IF NOT EXISTS floor.done (at timestamptz NOT NULL);
  TRUNCATE floor.audit, floor.outbox, floor.done;
  UPDATE developers SET status = 'pending', stake_amount = 0, staked_at = NULL`;

/** (f) Ponder and the floor's write until developers equals the ground truth and Ponder is ready. */
export async function floor(lab: Lab, url: string, env: Record<string, string>, schema: string, workload: Workload) {
  await query(url, FLOOR_TABLES);
  const config = loadSidecarConfig({ ...env, DATABASE_URL: url, DATABASE_SCHEMA: schema });
  const t0 = performance.now();
  const postgresBefore = lab.postgres.cpuSeconds();
  const ponder = await lab.startPonder({ ...env, DATABASE_URL: url }, schema);
  // Started when the sidecar is in (b).
  if (!(await ponderAnswering(ponder.url, ponder.process))) throw new Error("ponder exited before answering");
  const writer = lab.spawn(`floor-${schema}`, [path.join(repoRoot, "bench", "baselines", "floor.mjs")], {
    ...env,
    DATABASE_URL: url,
    DATABASE_SCHEMA: schema,
    FLOOR_HEAD: String(workload.head),
    FLOOR_THRESHOLD: config.activationThreshold.toString(),
    FLOOR_FACTOR: tokenFactor(config.stakeDecimals),
  });
  let readyAt: number | undefined;
  let done = 0;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await waitFor(
      "the floor's write and Ponder's /ready",
      async () => {
        if (readyAt === undefined && (await ponderReady(ponder.url))) readyAt = performance.now();
        await throwIfExited(ponder, "ponder", 2000);
        const written = (await db.query("SELECT 1 FROM floor.done")).rowCount === 1;
        return readyAt !== undefined && written;
      },
      { timeoutMs: 3_600_000, intervalMs: 50 },
    );
    done = performance.now();
    const wrong = await mismatches(db);
    if (wrong !== 0) throw new Error(`the floor wrote ${wrong} developers unlike the ground truth`);
  } finally {
    await db.end();
  }
  const result = {
    seconds: seconds(done - t0),
    readyToSyncedSeconds: seconds(done - (readyAt ?? done)),
    cpuSeconds: cpuSplit({ ponder: ponder.cpuSeconds(), floor: writer.cpuSeconds() }, lab.postgres, postgresBefore),
  };
  await Promise.all([ponder.stop(), writer.stop()]);
  return result;
}

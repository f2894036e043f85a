/**
 * Scenario (b): Ponder and the sidecar together, as `npm start` runs them, until the developers
 * table equals the ground truth; cold (empty RPC cache) or cached, and at other sizes (--scale).
 */
import pg from "pg";
import { ponderAnswering, throwIfExited } from "../../lib/local/process";
import { type LocalProcess, ponderReady } from "../../lib/local/stack";
import { waitFor } from "../../lib/wait";
import { cursorPastEvents, mismatches, prepareApplication, resetSidecar } from "../application";
import { type Lab, PRIVATE_NODE, workloadEnv } from "../lab";
import { statementsOf, zeroStatements } from "../statements";
import { cpuSplit, perSecond, seconds } from "../stats";
import { type Workload, workloadChain } from "../workload";

/** (b) Ponder and the sidecar together until developers equals the ground truth. */
export async function fullPipeline(
  lab: Lab,
  url: string,
  env: Record<string, string>,
  schema: string,
  workload: Workload,
) {
  if (lab.statements) await zeroStatements(url);
  const t0 = performance.now();
  const postgresBefore = lab.postgres.cpuSeconds();
  const ponder = await lab.startPonder({ ...env, DATABASE_URL: url }, schema);
  // As `npm start` does it.
  if (!(await ponderAnswering(ponder.url, ponder.process))) throw new Error("ponder exited before answering");
  // PONDER_URL: the sidecar watches this Ponder's health (not the default port's, where none runs).
  const sidecar = await lab.startSidecar(
    { ...env, DATABASE_URL: url, DATABASE_SCHEMA: schema, PONDER_URL: ponder.url },
    `sidecar-${schema}`,
  );
  let readyAt: number | undefined;
  let done = 0;
  let cpuSeconds: ReturnType<typeof cpuSplit> = {};
  let statements = {};
  // One connection for the whole wait: a new one per check would fork a backend every 50 ms.
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await waitFor(
      "developers to equal the ground truth",
      async () => {
        if (readyAt === undefined && (await ponderReady(ponder.url))) readyAt = performance.now();
        await throwIfExited(ponder, "ponder", 2000);
        await throwIfExited(sidecar, "sidecar", 2000);
        return readyAt !== undefined && (await cursorPastEvents(db, workload)) && (await mismatches(db)) === 0;
      },
      { timeoutMs: 3_600_000, intervalMs: 50 },
    );
    done = performance.now();
    cpuSeconds = cpuSplit({ ponder: ponder.cpuSeconds(), sidecar: sidecar.cpuSeconds() }, lab.postgres, postgresBefore);
    if (lab.statements) statements = { statements: await statementsOf(url, schema) };
  } finally {
    await db.end();
  }
  const result = {
    seconds: seconds(done - t0),
    readyToSyncedSeconds: seconds(done - (readyAt ?? done)),
    ponderPeakMb: ponder.peakRssMb(),
    sidecarPeakMb: sidecar.peakRssMb(),
    cpuSeconds,
    ...statements,
    eventsPerSecond: perSecond(workload.events, seconds(done - t0)),
    /** None is expected but lag: an alert here is a misconfigured run (or a defect), not a figure. */
    sidecarAlerts: alertsFired(sidecar),
  };
  await Promise.all([ponder.stop(), sidecar.stop()]);
  return result;
}

/** (b) cold and cached, with the private-node RPC settings, for one workload size. */
export async function pipelineAt(lab: Lab, options: { seed: string; events: number; developers: number }) {
  const { anvil, workload } = await workloadChain(options, lab.log);
  lab.keepAnvil(anvil);
  const env = workloadEnv(anvil, workload, PRIVATE_NODE);
  const url = await lab.freshDatabase();
  await prepareApplication(url, workload);
  lab.log(`(b) full pipeline at ${workload.events} events, cold`);
  const cold = await fullPipeline(lab, url, env, "scale_cold", workload);
  await resetSidecar(url);
  const cached = await fullPipeline(lab, url, env, "scale_cached", workload);
  await lab.stopAnvil(anvil);
  return { events: workload.events, cold, cached };
}

/**
 * How many alerts the sidecar raised, from its log, but for `lag`: a backfill is far behind the
 * head by nature (it fires once MAX_LAG_BLOCKS behind, and does in every backfill of the bench).
 */
export const alertsFired = (sidecar: LocalProcess) =>
  (sidecar.output().match(/"msg":"alert firing: (?!lag")/g) ?? []).length;

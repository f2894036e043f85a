/** Scenario (a): bare Ponder, `ponder start` on a fresh schema until /ready: the yardstick. */
import { ponderReady } from "../../lib/local/stack";
import { waitFor } from "../../lib/wait";
import type { Lab } from "../lab";
import { statementsOf, zeroStatements } from "../statements";
import { cpuSplit, seconds } from "../stats";

/** (a) `ponder start` on a fresh schema until /ready. */
export async function barePonder(lab: Lab, env: Record<string, string>, schema: string) {
  if (lab.statements) await zeroStatements(env.DATABASE_URL as string);
  const t0 = performance.now();
  const postgresBefore = lab.postgres.cpuSeconds();
  const ponder = await lab.startPonder(env, schema);
  await waitFor("ponder /ready", () => ponderReady(ponder.url), { timeoutMs: 3_600_000, intervalMs: 50 });
  const s = seconds(performance.now() - t0);
  const cpuSeconds = cpuSplit({ ponder: ponder.cpuSeconds() }, lab.postgres, postgresBefore);
  const peakMb = ponder.peakRssMb();
  const statements = lab.statements ? { statements: await statementsOf(env.DATABASE_URL as string, schema) } : {};
  await ponder.stop();
  return { seconds: s, peakMb, cpuSeconds, ...statements };
}

/**
 * A one-minute soak with a fixed seed (`npm run soak` runs longer ones): the whole stack under
 * traffic, then the invariants against the soak's own model. Its figures
 * (availability, freshness, recovery) are measured, not asserted: they depend on the machine.
 */
import { expect, it } from "vitest";
import { FAULT_KINDS, runSoak } from "../bench/soak/run";

/**
 * Every fault kind in the schedule; which of them a minute draws follows from the seed, and from
 * timing too, since the workload draws from the same generator.
 */
it("keeps every invariant through a minute of traffic and faults (seed 7)", async () => {
  const report = await runSoak({ minutes: 1, seed: 7, faults: [...FAULT_KINDS] });
  expect(report.violations, JSON.stringify(report, null, 1)).toEqual([]);
  expect(report.transactions).toBeGreaterThan(20);
  expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  expect(Math.max(0, ...Object.values(report.emailsPerDeveloper))).toBeLessThanOrEqual(1);
}, 900_000);

/**
 * Welcome jobs at the soak's end that wait out the claim of a sidecar it SIGKILLed: a worker
 * killed between a job's claim and its record leaves the job to the claim's 15-minute lease
 * (README "Effects"), longer than a soak. Such a job is waiting, not lost. Its claim names the
 * process that holds it (sidecar/effects/worker.ts workerId: host:pid:…).
 */
export type EndJob = {
  wallet: string;
  state: string /** locked_by while the claim runs, else null */;
  holder: string | null;
};

export function awaitingKilledClaim(jobs: EndJob[], killedPids: ReadonlySet<number>): Set<string> {
  return new Set(
    jobs
      .filter((j) => j.state === "pending" && j.holder !== null)
      .filter((j) => killedPids.has(Number(j.holder?.split(":")[1])))
      .map((j) => j.wallet),
  );
}

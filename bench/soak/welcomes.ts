/**
 * Welcome jobs at the soak's end that wait out the claim of a sidecar it SIGKILLed: a worker
 * killed between a job's claim and its send leaves the job to the claim's 15-minute lease
 * (README "Effects"), longer than a soak. Such a job is waiting, not lost. Its claim names the
 * process that holds it (sidecar/effects/worker.ts workerId: host:pid:…), and it was made before
 * that process was killed. One whose email arrived is no such job: the kill fell between the send
 * and its record, and a second send follows the lease.
 */
export type EndJob = {
  wallet: string;
  state: string;
  /** locked_by while the claim runs, else null */
  holder: string | null;
  /** When the claim was made (ms), while it runs. */
  claimedAt: number | null;
};

export function awaitingKilledClaim(
  jobs: EndJob[],
  /** Each sidecar process the soak SIGKILLed, by pid, with when. */
  killedAt: ReadonlyMap<number, number>,
  emailed: (wallet: string) => boolean,
): Set<string> {
  return new Set(
    jobs
      .filter((j) => j.state === "pending" && j.holder !== null && j.claimedAt !== null && !emailed(j.wallet))
      .filter((j) => {
        const at = killedAt.get(Number(j.holder?.split(":")[1]));
        return at !== undefined && (j.claimedAt as number) <= at;
      })
      .map((j) => j.wallet),
  );
}

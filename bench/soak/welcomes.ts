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

/** A developers row at the end, as the welcome check reads it. */
export type WelcomeRow = { wallet: string; staked_at: number | null };

/**
 * What the soak's end finds wrong with the welcomes, from its own knowledge where it can: every
 * row the sync activated (staked_at) has a job that was sent (its email received), skipped only
 * for want of an email the soak itself left out, or waits out a killed claim; and a row a sample
 * saw showing a stake (active at the soak's MIN_STAKE 0) was activated. Judged from the jobs
 * alone, a sync that skipped every welcome, or never activated a row, sent nothing and passed.
 */
export function welcomeViolations({
  rows,
  jobs,
  emails,
  seenStaking,
  registeredWithoutEmail,
  waitingOutKill,
}: {
  rows: WelcomeRow[];
  jobs: { wallet: string; state: string; skipReason: string | null }[];
  emails: Record<string, number>;
  /** Wallets whose row a sample saw with a stake above 0. */
  seenStaking: ReadonlySet<string>;
  /** Wallets the soak registered without an email (given one later or not). */
  registeredWithoutEmail: ReadonlySet<string>;
  waitingOutKill: ReadonlySet<string>;
}): string[] {
  const violations: string[] = [];
  const byWallet = new Map(jobs.map((j) => [j.wallet, j]));
  for (const row of rows) {
    if (row.staked_at === null) {
      if (seenStaking.has(row.wallet)) violations.push(`${row.wallet}: showed a stake, never activated (no staked_at)`);
      continue;
    }
    const job = byWallet.get(row.wallet);
    if (job === undefined) violations.push(`${row.wallet}: activated without a welcome job`);
    else if (job.state === "sent" && !emails[row.wallet]) violations.push(`${row.wallet}: job sent, no email received`);
    else if (job.state === "pending" && waitingOutKill.has(row.wallet)) continue;
    else if (job.state === "pending" || job.state === "dead")
      violations.push(`${row.wallet}: welcome job ${job.state}`);
    else if (job.state === "skipped" && job.skipReason !== "no_email") {
      violations.push(`${row.wallet}: welcome job skipped (${job.skipReason})`);
    } else if (job.state === "skipped" && !registeredWithoutEmail.has(row.wallet)) {
      violations.push(`${row.wallet}: welcome job skipped for no email, though it always had one`);
    }
  }
  return violations;
}

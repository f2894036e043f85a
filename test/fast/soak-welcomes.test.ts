/** The soak's end check of welcome jobs (bench/soak/welcomes.ts). */
import { expect, it } from "vitest";
import { awaitingKilledClaim, welcomeViolations } from "../../bench/soak/welcomes";

it("excuses a pending job only while a sidecar the soak killed after the claim holds it, and no email arrived", () => {
  const killedAt = new Map([[4242, 10_000]]);
  const job = (wallet: string, holder: string | null, claimedAt: number | null) => ({
    wallet,
    state: "pending",
    holder,
    claimedAt,
  });
  const jobs = [
    job("0xa", "host:4242:1a2b3c4d", 9_000), // claimed, then its process killed
    job("0xb", "host:5151:5e6f7a8b", 9_000), // held by a live process: a violation
    job("0xc", null, null), // nobody holds it: a violation
    job("0xd", "host:4242:9a8b7c6d", 11_000), // a later process with the killed one's pid
    job("0xe", "host:4242:1a2b3c4d", 9_000), // its email arrived: a second send follows the lease
    { wallet: "0xf", state: "sent", holder: null, claimedAt: null },
  ];
  const emailed = (wallet: string) => wallet === "0xe";
  expect([...awaitingKilledClaim(jobs, killedAt, emailed)]).toEqual(["0xa"]);
  expect([...awaitingKilledClaim(jobs, new Map(), emailed)]).toEqual([]);
});

it("fails a welcome skipped for want of an email the developer always had, one skipped for another reason, and a row seen staking that was never activated", () => {
  const rows = [
    { wallet: "0xa", staked_at: 1010 }, // skipped, though registered with an email
    { wallet: "0xb", staked_at: 1010 }, // skipped: registered without one
    { wallet: "0xc", staked_at: null }, // a sample saw it staking
    { wallet: "0xd", staked_at: null }, // never seen staking
    { wallet: "0xe", staked_at: 1010 }, // sent, received
    { wallet: "0xf", staked_at: 1010 }, // skipped as historic: the soak has no history
  ];
  const jobs = [
    { wallet: "0xa", state: "skipped", skipReason: "no_email" },
    { wallet: "0xb", state: "skipped", skipReason: "no_email" },
    { wallet: "0xe", state: "sent", skipReason: null },
    { wallet: "0xf", state: "skipped", skipReason: "historic" },
  ];
  const judged = welcomeViolations({
    rows,
    jobs,
    emails: { "0xe": 1 },
    seenStaking: new Set(["0xa", "0xc", "0xe"]),
    registeredWithoutEmail: new Set(["0xb"]),
    waitingOutKill: new Set(),
  });
  // Before, each passed: a sync that skipped every welcome sent none and the soak said 0 violations.
  expect(judged).toEqual([
    "0xa: welcome job skipped for no email, though it always had one",
    "0xc: showed a stake, never activated (no staked_at)",
    "0xf: welcome job skipped (historic)",
  ]);
});

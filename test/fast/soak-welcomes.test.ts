/** The soak's end check of welcome jobs (bench/soak/welcomes.ts). */
import { expect, it } from "vitest";
import { awaitingKilledClaim } from "../../bench/soak/welcomes";

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

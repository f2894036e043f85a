/** The soak's end check of welcome jobs (bench/soak/welcomes.ts). */
import { expect, it } from "vitest";
import { awaitingKilledClaim } from "../../bench/soak/welcomes";

it("excuses a pending job only while a sidecar the soak killed holds its claim", () => {
  const jobs = [
    { wallet: "0xa", state: "pending", holder: "host:4242:1a2b3c4d" }, // claimed by the killed one
    { wallet: "0xb", state: "pending", holder: "host:5151:5e6f7a8b" }, // by a live one: a violation
    { wallet: "0xc", state: "pending", holder: null }, // nobody holds it: a violation
    { wallet: "0xd", state: "sent", holder: null },
  ];
  expect([...awaitingKilledClaim(jobs, new Set([4242]))]).toEqual(["0xa"]);
  expect([...awaitingKilledClaim(jobs, new Set())]).toEqual([]);
});

/**
 * The soak's freshness figure (bench/soak/freshness.ts): per stake, from the sample that confirms
 * its block to the first sample whose developers row shows it.
 */
import { expect, it } from "vitest";
import { Freshness } from "../../bench/soak/freshness";
import { ChainModel, type ModelEvent } from "../../bench/soak/model";

const wallet = "0x00000000000000000000000000000000000000aa";
const stake = (model: ChainModel, block: number, delta: bigint) => {
  const e: ModelEvent = { wallet, block, time: block, delta, tx: "0x01", at: 0 };
  model.events.push(e);
  return e;
};

it("measures a stake from the sample confirming its block to the sample whose row shows it", () => {
  const model = new ChainModel();
  const freshness = new Freshness();
  stake(model, 10, 5n);
  freshness.observe(model, new Map([[wallet, 0n]]), 9, 1000); // not confirmed yet
  freshness.observe(model, new Map([[wallet, 0n]]), 10, 2000); // confirmed, row not there yet
  freshness.observe(model, new Map([[wallet, 0n]]), 11, 2250);
  expect(freshness.seconds).toEqual([]);
  freshness.observe(model, new Map([[wallet, 5n]]), 11, 2750);
  expect(freshness.seconds).toEqual([0.75]);
  // Counted once.
  freshness.observe(model, new Map([[wallet, 5n]]), 12, 3000);
  expect(freshness.seconds).toEqual([0.75]);
});

it("counts a row that already shows a later stake, and drops a stake a reorg took back", () => {
  const model = new ChainModel();
  const freshness = new Freshness();
  stake(model, 10, 5n);
  stake(model, 11, 2n);
  freshness.observe(model, new Map([[wallet, 0n]]), 10, 1000);
  freshness.observe(model, new Map([[wallet, 7n]]), 11, 1500); // the second stake's row shows both
  expect(freshness.seconds).toEqual([0.5, 0]);

  stake(model, 20, 3n);
  freshness.observe(model, new Map([[wallet, 7n]]), 20, 2000);
  model.revertTo(19, true, 22, 20);
  freshness.observe(model, new Map([[wallet, 7n]]), 21, 9000);
  expect(freshness.seconds).toEqual([0.5, 0]);
});

it("leaves out a stake whose wallet had no row when it was confirmed", () => {
  const model = new ChainModel();
  const freshness = new Freshness();
  stake(model, 10, 5n);
  freshness.observe(model, new Map(), 10, 1000);
  freshness.observe(model, new Map([[wallet, 5n]]), 11, 60_000);
  expect(freshness.seconds).toEqual([]);
});

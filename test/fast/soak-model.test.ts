/**
 * The soak's model of `staked_at` (bench/soak/model.ts): which values a developers row may hold
 * at a confirmed block, the block time of the stake that first activated the developer.
 */
import { afterAll, afterEach, expect, it, vi } from "vitest";
import { ChainModel } from "../../bench/soak/model";

const wallet = "0x00000000000000000000000000000000000000aa";
/** An event at `block`, whose block time is 1000 + block seconds, recorded a second after the last step. */
const event = (model: ChainModel, block: number, delta: bigint) => {
  vi.setSystemTime(Date.now() + 1000);
  model.events.push({ wallet, block, time: 1000 + block, delta, tx: "0x01", at: Date.now() });
};
/** A revert, a second after the last step (the model orders reverts and events by when they happened). */
const revert = (model: ChainModel, ...args: Parameters<ChainModel["revertTo"]>) => {
  vi.setSystemTime(Date.now() + 1000);
  model.revertTo(...args);
};
vi.useFakeTimers({ toFake: ["Date"] });
afterEach(() => vi.setSystemTime(0));
// The worker runs other files next (vitest.config.ts): they get the real clock.
afterAll(() => vi.useRealTimers());

it("is the first activation's block time, through an unstake to 0 and a new stake", () => {
  const model = new ChainModel();
  expect(model.stakedAtChoices(wallet, 50)).toEqual(new Set([null]));
  event(model, 10, 5n);
  event(model, 12, -5n);
  event(model, 14, 3n);
  expect(model.stakedAtChoices(wallet, 9)).toEqual(new Set([null]));
  // Active at 10: the row must have it.
  expect(model.stakedAtChoices(wallet, 10)).toEqual(new Set([1010]));
  // Inactive at 12: a row registered then was never active and has none.
  expect(model.stakedAtChoices(wallet, 12)).toEqual(new Set([null, 1010]));
  expect(model.stakedAtChoices(wallet, 20)).toEqual(new Set([1010]));
});

it("also allows an activation a deep reorg took back after it was confirmed, not one a shallow reorg took", () => {
  const model = new ChainModel();
  event(model, 10, 5n);
  // Shallow: block 11 was never confirmed (confirmed 9 at the revert).
  revert(model, 9, false, 11, 9);
  expect(model.stakedAtChoices(wallet, 20)).toEqual(new Set([null]));
  event(model, 12, 5n);
  // Deep: block 12 was confirmed (14 at the revert); the new fork activates at 15.
  revert(model, 11, true, 16, 14);
  event(model, 15, 5n);
  expect(model.stakedAtChoices(wallet, 20)).toEqual(new Set([1015, 1012]));
});

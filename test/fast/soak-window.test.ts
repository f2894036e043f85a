/**
 * The soak's window of blocks a developers row may show at a sample (bench/soak/window.ts): any
 * block confirmed in the last 5 s, on whichever fork.
 */
import { expect, it } from "vitest";
import { freshWindow } from "../../bench/soak/window";

/** A head a second, from block 100 at t = 0 s. */
const steady = (seconds: number) => Array.from({ length: seconds + 1 }, (_, i) => ({ at: i * 1000, head: 100 + i }));

it("is the blocks confirmed in the last 5 s, up to the higher of the two heads read around the rows", () => {
  const heads = steady(10); // head 110 at t = 10 s
  expect(freshWindow(heads, 10_000, 110, 2)).toEqual({ from: 103, to: 108 });
  // A block mined between the two reads of the head may be applied already.
  expect(freshWindow(heads, 10_000, 111, 2)).toEqual({ from: 103, to: 109 });
});

it("after a revert, counts the new fork's blocks confirmed since it as new", () => {
  // Head 110 at t = 10 s; reverted to 104 at t = 11 s; the new fork mines 105, 106 at t = 12, 13 s.
  const heads = [...steady(10), { at: 11_000, head: 104 }, { at: 12_000, head: 105 }, { at: 13_000, head: 106 }];
  // 5 s before t = 13 s the head was 108; the lowest since, 104. Blocks from 102 up are new.
  expect(freshWindow(heads, 13_000, 106, 2)).toEqual({ from: 102, to: 104 });
});

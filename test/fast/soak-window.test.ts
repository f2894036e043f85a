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
  expect(freshWindow(heads, 13_000, 106, 2, [{ at: 10_500, base: 104 }])).toEqual({ from: 102, to: 104 });
});

it("after a revert, still counts a block a higher head confirmed before it, if the revert left that block", () => {
  // Head 110 at t = 10 s confirms 108; a one-block revert to 109 at t = 10.5 s leaves 108 on the
  // chain, though the head (109) now confirms only 107: a row at 108 is not stale.
  const heads = [...steady(10), { at: 11_000, head: 109 }];
  const reverts = [{ at: 10_500, base: 109 }];
  expect(freshWindow(heads, 11_000, 109, 2, reverts)).toEqual({ from: 104, to: 108 });
  // A deep one to 104 leaves nothing above 104: the blocks the old head confirmed are gone.
  const deep = [...steady(10), { at: 11_000, head: 104 }];
  expect(freshWindow(deep, 11_000, 104, 2, [{ at: 10_500, base: 104 }])).toEqual({ from: 102, to: 104 });
  // Without the revert known, the old head's blocks would pass for confirmed.
  expect(freshWindow(deep, 11_000, 104, 2).to).toBe(108);
});

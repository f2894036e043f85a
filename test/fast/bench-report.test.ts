/** The bench's table reads the cached goal pair by pair, beside what the machine alone makes of a pair. */
import { describe, expect, it } from "vitest";
import { table } from "../../bench/report";
import { noiseRatios, pairRatios } from "../../bench/stats";

describe("the bench's pairs", () => {
  it("divides each run of (a) by the run of (b) it took turns with, in order", () => {
    expect(pairRatios([6.0, 6.5, 7.0], [6.6, 6.5, 7.7])).toEqual([0.91, 1, 0.91]);
  });

  it("compares each bare run with the next, the lower way round", () => {
    expect(noiseRatios([6.0, 7.5, 6.0, 6.0])).toEqual([0.8, 0.8, 1]);
  });

  it("puts both in the table with their lowest, and a dash where a run has no repeats", () => {
    const rows = table({
      barePonder: { privateNodeCold: { runsSeconds: [14, 15] }, cached: { runsSeconds: [6.0, 7.5, 6.0] } },
      fullPipeline: { cold: { runsSeconds: [14, 14] }, cached: { runsSeconds: [6.6, 7.5, 7.5] } },
    }).split("\n");
    expect(rows).toContain(
      "| (b)/(a) cold · cached, pair by pair | 1.00 1.07 (lowest 1.00) · 0.91 1.00 0.80 (lowest 0.80) |",
    );
    expect(rows).toContain(
      "| (a)/(a) cold · cached, each bare run against the next: the machine's own spread | 0.93 (lowest 0.93) · 0.80 0.80 (lowest 0.80) |",
    );
    expect(table({}).split("\n")).toContain("| (b)/(a) cold · cached, pair by pair | — · — |");
  });
});

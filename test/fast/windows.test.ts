/**
 * The step's pure decisions, without a database: which chains a step takes and how far
 * (windows.ts), when an applied event Ponder no longer has is a reorg (removal-guard.ts), and
 * which of several Ponder instances a step reads (choose-source.ts).
 */
import { describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../../lib/config";
import { chooseSource, follow, newWatch, type Source, SWITCH_AHEAD_BLOCKS } from "../../sidecar/sync/choose-source";
import { deferRemovals, forgetChainsWithoutWindow, type RemovalGuard } from "../../sidecar/sync/removal-guard";
import type { PonderProgress } from "../../sidecar/sync/sql/read-progress";
import {
  behindCursor,
  type CatchUp,
  confirmedBlocks,
  nothingNew,
  planWindows,
  type Window,
} from "../../sidecar/sync/windows";

const config = loadSidecarConfig({
  CHAIN_ID: "31337",
  RPC_URL: "http://127.0.0.1:1",
  STAKE_VAULT_ADDRESS: `0x${"1".repeat(40)}`,
  START_BLOCK: "1",
  DATABASE_URL: "postgresql://127.0.0.1:1/none",
  CONFIRMATIONS: "2",
});
const progress = (p: Partial<PonderProgress> & { indexed: number }): Map<number, PonderProgress> =>
  new Map([
    [
      31337,
      {
        chainId: 31337,
        latest: p.indexed,
        finalized: 0,
        checkpoint: `c${p.indexed}`,
        ready: true,
        indexing: false,
        reorgs: null,
        ...p,
      },
    ],
  ]);
const cursor = (block: number, finalBlock = 0) => new Map([[31337, { block, finalBlock }]]);
const head = (block: number) => new Map([[31337, { block, at: 0 }]]);

describe("planWindows", () => {
  it("targets Ponder's trusted block minus CONFIRMATIONS, diffing from the cursor's final block", () => {
    const [w] = planWindows(config, progress({ indexed: 50, finalized: 40 }), cursor(30, 20), head(50), "no");
    expect(w).toMatchObject({ chainId: 31337, cursor: 30, lower: 20, target: 48, finalBlock: 40 });
  });

  it("never moves the final block back, nor past the target", () => {
    expect(
      planWindows(config, progress({ indexed: 50, finalized: 10 }), cursor(30, 20), head(50), "no")[0],
    ).toMatchObject({ finalBlock: 20 });
    expect(
      planWindows(config, progress({ indexed: 50, finalized: 60 }), cursor(30, 20), head(50), "no")[0],
    ).toMatchObject({ finalBlock: 48 });
  });

  it("while Ponder is behind the cursor, compares only up to its checkpoint, for removals, and only once it is ready", () => {
    // A reorg deeper than CONFIRMATIONS, or a lagging provider: the target is below the cursor.
    const [w] = planWindows(config, progress({ indexed: 26 }), cursor(30, 20), head(50), "due");
    expect(w).toMatchObject({ cursor: 30, lower: 20, target: 24, diffTo: 26, finalBlock: 20 });
    expect(behindCursor(w as Window)).toBe(true);
    expect(nothingNew(w as Window)).toBe(true); // asked as a yes/no: is any applied event missing?
    // Ponder past the cursor but not by CONFIRMATIONS: compared up to the cursor.
    expect(planWindows(config, progress({ indexed: 31 }), cursor(30), head(50), "due")[0]).toMatchObject({
      target: 29,
      diffTo: 30,
    });
    // Not ready (a restart's crash recovery), or nothing above the final block: no window.
    expect(planWindows(config, progress({ indexed: 26, ready: false }), cursor(30, 20), head(50), "due")).toEqual([]);
    expect(planWindows(config, progress({ indexed: 20 }), cursor(30, 20), head(50), "due")).toEqual([]);
    // A window that reaches the cursor compares up to its target and takes everything.
    const [next] = planWindows(config, progress({ indexed: 33 }), cursor(30, 20), head(50), "due");
    expect(next).toMatchObject({ target: 31, diffTo: 31 });
    expect(behindCursor(next as Window)).toBe(false);
  });

  it("while Ponder backfills, steps a chain only as the loop allows or once the window reaches the head", () => {
    const backfilling = progress({ indexed: 500, ready: false });
    expect(planWindows(config, backfilling, cursor(0), head(1000), "no")).toEqual([]);
    expect(planWindows(config, backfilling, cursor(0), head(1000), "near-end")).toEqual([]); // 498 of 998
    expect(planWindows(config, backfilling, cursor(0), head(600), "near-end")).toHaveLength(1); // 498 of 598
    // Early enough that the step ends about when Ponder's backfill does (NEAR_END).
    expect(planWindows(config, backfilling, cursor(0), head(700), "near-end")).toHaveLength(1); // 498 of 698
    expect(planWindows(config, backfilling, cursor(0), head(720), "near-end")).toEqual([]); // 498 of 718
    expect(planWindows(config, backfilling, cursor(0), head(1000), "due")).toHaveLength(1);
    expect(planWindows(config, backfilling, cursor(0), head(500), "no")).toHaveLength(1); // reaches the head
    // A head the cursor has passed (a lagging provider, or its last answer before an outage) says
    // nothing of what is left: before, it was taken as reached, and every round stepped.
    const further = progress({ indexed: 1000, ready: false });
    expect(planWindows(config, further, cursor(900), head(500), "no")).toEqual([]);
    expect(planWindows(config, further, cursor(900), head(500), "near-end")).toEqual([]);
    // Building its indexes: its backfill is over, whatever the head (Ponder's finality further).
    const indexing = progress({ indexed: 500, ready: false, indexing: true });
    expect(planWindows(config, indexing, cursor(0), head(1000), "no")).toMatchObject([{ target: 498 }]);
    // Once: stepped there, it waits as the loop allows (a long build is not diffed at every poll).
    expect(planWindows(config, indexing, cursor(498), head(1000), "no")).toEqual([]);
  });

  it("calls a window early only when the near-end rule alone took it: its developers may wait", () => {
    const backfilling = progress({ indexed: 500, ready: false });
    const early = (p: Map<number, PonderProgress>, headBlock: number, catchUp: CatchUp) =>
      planWindows(config, p, cursor(0), head(headBlock), catchUp).map((w) => w.early);
    expect(early(backfilling, 600, "near-end")).toEqual([true]);
    // Due (developers waited CATCH_UP_WAIT_MS), at the head, the index build, a ready Ponder: written.
    expect(early(backfilling, 1000, "due")).toEqual([false]);
    expect(early(backfilling, 500, "near-end")).toEqual([false]);
    expect(early(progress({ indexed: 500, ready: false, indexing: true }), 600, "near-end")).toEqual([false]);
    expect(early(progress({ indexed: 500 }), 600, "near-end")).toEqual([false]);
  });

  it("calls a window with no new confirmed or final block under a ready Ponder one with nothing new", () => {
    const w = (p: Map<number, PonderProgress>, c = cursor(48, 40)) => planWindows(config, p, c, head(50), "due")[0];
    expect(nothingNew(w(progress({ indexed: 50, finalized: 40 })) as Window)).toBe(true);
    expect(nothingNew(w(progress({ indexed: 51, finalized: 40 })) as Window)).toBe(false); // a new block
    expect(nothingNew(w(progress({ indexed: 50, finalized: 45 })) as Window)).toBe(false); // newly final
    expect(nothingNew(w(progress({ indexed: 50, finalized: 40, ready: false })) as Window)).toBe(false);
  });

  it("gives a chain without a window its cursor as its confirmed block", () => {
    expect(confirmedBlocks(config, [], cursor(30))).toEqual(new Map([[31337, { block: 30, applied: 30 }]]));
  });
});

describe("the removal guard", () => {
  const windowAt = (p: Map<number, PonderProgress>) => planWindows(config, p, cursor(30), head(50), "due");
  const removedOne = new Map([[31337, ["e24"]]]);

  it("holds a removal until a ready Ponder has committed a later checkpoint", () => {
    const guard: RemovalGuard = new Map();
    expect(deferRemovals(guard, windowAt(progress({ indexed: 50 })), removedOne).chains).toEqual([31337]);
    expect(deferRemovals(guard, windowAt(progress({ indexed: 50 })), removedOne).chains).toEqual([31337]); // same checkpoint
    expect(deferRemovals(guard, windowAt(progress({ indexed: 51 })), removedOne).chains).toEqual([]); // moved: a reorg
    expect(guard.size).toBe(0);
  });

  it("never takes rows missing under a Ponder that is not ready (crash recovery) for a reorg", () => {
    const guard: RemovalGuard = new Map();
    for (const indexed of [50, 51, 52]) {
      expect(deferRemovals(guard, windowAt(progress({ indexed, ready: false })), removedOne).chains).toEqual([31337]);
    }
    // Ready again: a first sighting, confirmed only by a later checkpoint.
    expect(deferRemovals(guard, windowAt(progress({ indexed: 53 })), removedOne).chains).toEqual([31337]);
    expect(deferRemovals(guard, windowAt(progress({ indexed: 54 })), removedOne).chains).toEqual([]);
  });

  it("confirms each missing event by a checkpoint of its own: another event's earlier sighting confirms nothing", () => {
    const guard: RemovalGuard = new Map();
    const removed = (...keys: string[]) => new Map([[31337, keys]]);
    expect(deferRemovals(guard, windowAt(progress({ indexed: 50 })), removed("e27")).chains).toEqual([31337]);
    // Another event missing under another checkpoint (a second lag's first half): a first sighting.
    expect(deferRemovals(guard, windowAt(progress({ indexed: 51 })), removed("e24")).chains).toEqual([31337]);
    expect(guard.get(31337)).toEqual(new Map([["e24", "c51"]]));
    // Both missing: the new one holds back the other.
    expect(deferRemovals(guard, windowAt(progress({ indexed: 52 })), removed("e24", "e25")).chains).toEqual([31337]);
    expect(deferRemovals(guard, windowAt(progress({ indexed: 53 })), removed("e24", "e25")).chains).toEqual([]);
    expect(guard.size).toBe(0);
  });

  it("behind the cursor, takes the events missing under an earlier checkpoint and holds only the fresh ones", () => {
    const guard: RemovalGuard = new Map();
    const behind = (indexed: number) => planWindows(config, progress({ indexed }), cursor(30), head(50), "due");
    expect(deferRemovals(guard, behind(20), new Map([[31337, ["e20"]]]))).toEqual({
      chains: [],
      held: [{ chainId: 31337, keys: ["e20"] }],
    });
    expect(deferRemovals(guard, behind(21), new Map([[31337, ["e20", "e21"]]]))).toEqual({
      chains: [],
      held: [{ chainId: 31337, keys: ["e21"] }],
    });
    expect(guard.get(31337)).toEqual(new Map([["e21", "c21"]]));
    expect(deferRemovals(guard, behind(22), new Map([[31337, ["e21"]]]))).toEqual({ chains: [], held: [] });
    expect(guard.size).toBe(0);
  });

  it("forgets a sighting when the chain goes without a window, and when the removal is gone", () => {
    const guard: RemovalGuard = new Map();
    deferRemovals(guard, windowAt(progress({ indexed: 50 })), removedOne);
    forgetChainsWithoutWindow(guard, []);
    expect(guard.size).toBe(0);
    deferRemovals(guard, windowAt(progress({ indexed: 50 })), removedOne);
    expect(deferRemovals(guard, windowAt(progress({ indexed: 50 })), new Map()).chains).toEqual([]);
    expect(guard.size).toBe(0);
  });
});

describe("chooseSource (PONDER_REPLICA_SCHEMAS)", () => {
  // Two chains, and an instance's blocks on each.
  const two = { chains: [{ id: 1 }, { id: 2 }] } as unknown as Parameters<typeof chooseSource>[0];
  const both = (schema: string, x: number, y: number): Source => ({
    schema,
    progress: new Map([
      [
        1,
        {
          chainId: 1,
          indexed: x,
          latest: x,
          finalized: 0,
          checkpoint: `c${x}`,
          ready: true,
          indexing: false,
          reorgs: null,
        },
      ],
      [
        2,
        {
          chainId: 2,
          indexed: y,
          latest: y,
          finalized: 0,
          checkpoint: `c${y}`,
          ready: true,
          indexing: false,
          reorgs: null,
        },
      ],
    ]),
  });
  const at = (schema: string, indexed: number, ready = true): Source => ({
    schema,
    progress: progress({ indexed, ready }),
  });

  it("stays with the instance it reads while that one is ready and at most a block behind", () => {
    expect(chooseSource(config, "a", [at("a", 50), at("b", 50)])).toBe("a");
    expect(chooseSource(config, "a", [at("a", 50), at("b", 50 + SWITCH_AHEAD_BLOCKS - 1)])).toBe("a");
    expect(chooseSource(config, "b", [at("a", 51), at("b", 50)])).toBe("b");
  });

  it("leaves one that stopped (killed, frozen, behind a slow RPC: ready, checkpoint still) once another is ahead", () => {
    expect(chooseSource(config, "a", [at("a", 50), at("b", 50 + SWITCH_AHEAD_BLOCKS)])).toBe("b");
  });

  it("measures the one it reads from its peak: a checkpoint a reorg lowered is not behind", () => {
    const watch = { ...newWatch(), peak: new Map([[31337, 50]]) };
    expect(chooseSource(config, "a", [at("a", 40), at("b", 51)], watch)).toBe("a");
    expect(chooseSource(config, "a", [at("a", 40), at("b", 50 + SWITCH_AHEAD_BLOCKS)], watch)).toBe("b");
    // The peak is the read instance's own: another's low checkpoint is not lifted by it.
    expect(chooseSource(config, "b", [at("a", 40), at("b", 41)], watch)).toBe("b");
  });

  describe("another that followed a reorg the one read has not", () => {
    // Steps as followSource takes them, "a" read first: each gets the blocks each instance shows
    // (one chain) and returns the one read.
    const steps = (watch = newWatch()) => {
      let current = "a";
      return (a: number, b: number) => {
        current = follow(config, watch, current, [at("a", a), at("b", b)]).schema;
        return current;
      };
    };

    it("is read once it has committed two blocks of the new fork while the one read committed none", () => {
      const step = steps();
      expect([step(50, 50), step(50, 44), step(50, 45), step(50, 46)]).toEqual(["a", "a", "a", "b"]);
      // The one left, still on the old fork and "ahead", is not read again until it commits.
      expect([step(50, 47), step(50, 48), step(50, 49)]).toEqual(["b", "b", "b"]);
    });

    it("is not, while the one read commits too, nor once the one read follows the same reorg", () => {
      const committing = steps();
      expect([committing(50, 50), committing(50, 44), committing(50, 45), committing(51, 46)]).toEqual([
        "a",
        "a",
        "a",
        "a",
      ]);
      expect([committing(51, 47), committing(52, 48), committing(53, 49)]).toEqual(["a", "a", "a"]);
      const following = steps();
      expect([following(50, 50), following(50, 44), following(45, 45), following(45, 46), following(45, 47)]).toEqual([
        "a",
        "a",
        "a",
        "a",
        "a",
      ]);
    });

    it("is not counted when it follows second a reorg the one read followed first, however fast it climbs", () => {
      const step = steps();
      // b follows first, in a burst, and is read; a follows the same reorg later, in a burst too.
      expect([step(50, 50), step(50, 45), step(50, 46), step(50, 47)]).toEqual(["a", "a", "a", "b"]);
      expect([step(50, 48), step(50, 50), step(45, 50), step(46, 50), step(47, 50), step(49, 50)]).toEqual([
        "b",
        "b",
        "b",
        "b",
        "b",
        "b",
      ]);
    });

    it("is counted no more once it has climbed back to the one read: then only the height rule", () => {
      const step = steps();
      expect([step(50, 50), step(50, 44), step(50, 45), step(50, 50), step(50, 51)]).toEqual(["a", "a", "a", "a", "a"]);
    });

    it("is not, when it came down only while not ready (a restart's crash recovery)", () => {
      const watch = newWatch();
      const step = (b: number, ready: boolean) => follow(config, watch, "a", [at("a", 50), at("b", b, ready)]).schema;
      expect([step(50, true), step(44, false), step(45, true), step(46, true)]).toEqual(["a", "a", "a", "a"]);
    });

    it("with several chains: the one left is read again only once it has committed on the chain it stalled on", () => {
      const watch = newWatch();
      let current = "a";
      const step = (a: [number, number], b: [number, number]) => {
        current = follow(two, watch, current, [both("a", ...a), both("b", ...b)]).schema;
        return current;
      };
      // a stalls on chain 1's old fork and goes on committing chain 2; b follows the reorg.
      expect([step([50, 100], [50, 100]), step([50, 101], [42, 101]), step([50, 102], [43, 102])]).toEqual([
        "a",
        "a",
        "a",
      ]);
      expect(step([50, 103], [44, 103])).toBe("b");
      // a's commits on chain 2 do not make it readable: on chain 1 it still shows the old fork.
      expect([step([50, 104], [45, 104]), step([50, 105], [46, 105])]).toEqual(["b", "b"]);
      expect(watch.left.get("a")).toEqual(new Map([[1, "c50:true"]]));
    });

    it("with a chain without new blocks: the one left is readable again once it has committed on the others", () => {
      const watch = newWatch();
      let current = "a";
      const step = (a: number, b: number) => {
        current = follow(two, watch, current, [both("a", a, 7), both("b", b, 7)]).schema;
        return current;
      };
      expect([step(50, 50), step(50, 42), step(50, 43), step(50, 44)]).toEqual(["a", "a", "a", "b"]);
      // a follows the reorg and climbs; b freezes at 46 (killed: still ready). Chain 2 never moves.
      expect([step(50, 45), step(45, 46), step(47, 46), step(48, 46)]).toEqual(["b", "b", "b", "a"]);
      expect(watch.left.has("a")).toBe(false);
    });

    it("a new term starts from what earlier terms left: not at the one left, though it is the first", () => {
      const watch = newWatch();
      const step = steps(watch);
      expect([step(50, 50), step(50, 44), step(50, 45), step(50, 46)]).toEqual(["a", "a", "a", "b"]);
      expect(steps(newWatch(new Map(watch.left)))(50, 47)).toBe("b");
      // Nor when the other is restarting, or absent (its locks held): never the old fork.
      const restarting = follow(config, newWatch(new Map(watch.left)), "a", [at("a", 50), at("b", 47, false)]);
      expect(restarting.schema).toBe("b");
      const absent = follow(config, newWatch(new Map(watch.left)), "a", [at("a", 50), { schema: "b", progress: null }]);
      expect(absent.schema).toBe("b");
    });
  });

  it("leaves one that is not ready (a restart's crash recovery) or whose tables are gone, for a ready one", () => {
    expect(chooseSource(config, "a", [at("a", 50, false), at("b", 40)])).toBe("b");
    expect(chooseSource(config, "a", [{ schema: "a", progress: null }, at("b", 40)])).toBe("b");
    // Of several ready ones, the furthest.
    expect(chooseSource(config, "a", [at("a", 50, false), at("b", 40), at("c", 45)])).toBe("c");
  });

  it("with several chains: leaves one stalled on a chain for one a block behind on another, and never flaps", () => {
    // a's chain 2 stalled (its RPC down); b a block behind on chain 1: b.
    expect(chooseSource(two, "a", [both("a", 100, 50), both("b", 99, 60)])).toBe("b");
    // Each stalled on another chain: neither is ahead; stay.
    expect(chooseSource(two, "a", [both("a", 100, 50), both("b", 90, 60)])).toBe("a");
    expect(chooseSource(two, "b", [both("a", 100, 50), both("b", 90, 60)])).toBe("b");
  });

  it("never goes to one that is not ready, nor away when none is", () => {
    expect(chooseSource(config, "a", [at("a", 50), at("b", 90, false)])).toBe("a");
    expect(chooseSource(config, "a", [at("a", 50, false), at("b", 90, false)])).toBe("a");
  });
});

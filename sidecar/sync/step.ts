/**
 * One sync step, one REPEATABLE READ transaction, the README's steps in order: read Ponder's
 * progress and the cursors → diff Ponder's confirmed events against the applied ones → fold the
 * difference into chain_stake → find the developers it affects → queue those whose row differs →
 * move the cursor. Killing the process at any point rolls the whole step back, or, once the
 * step's last round trip (which carries its COMMIT) has reached the server, lets it commit whole;
 * the next step redoes or goes on from it (the leader lock is the session's until the server has
 * run it). With the index on the developers' wallets the step writes its developers itself,
 * before the queue, and queues only those it could not write (write-in-step.ts); the queue is
 * written to developers right after, in a transaction of its own (apply-developers.ts). Each
 * operation is a file in ./sql, stating the tables it reads and writes.
 */
import type pg from "pg";
import type { SidecarConfig } from "../../lib/config";
import type { Head } from "../chain-heads";
import { missingRelation } from "../db/queryable";
import { allRows, runTogether, type Statements, yes } from "../db/together";
import { COMMIT, type Committed, committed, inTransaction } from "../db/transaction";
import { deferRemovals, forgetChainsWithoutWindow, type RemovalGuard } from "./removal-guard";
import { type ReorgWatch, reorgHeld, reorgSince, reorgTable } from "./reorg-watch";
import { addChainStake } from "./sql/add-chain-stake";
import { advanceCursor } from "./sql/advance-cursor";
import { pendingWallets, walletsFrom } from "./sql/claim-developers";
import {
  countsFrom,
  deltaCounts,
  deltaCountsStatements,
  diffEvents,
  diffStatements,
  type EventCounts,
  holdRemovals,
  leaveOutChains,
  ledgerMatches,
  removedKeys,
} from "./sql/diff-events";
import { anyRegistrations, findRegistrations } from "./sql/find-registrations";
import { DevelopersBusy, lockDevelopers, ranOutASlice } from "./sql/lock-developers";
import { markAffected } from "./sql/mark-affected";
import { findStaleDevelopers, findStaleTogether, queueDevelopers } from "./sql/queue-developers";
import { cursorsFrom, cursorsStatements } from "./sql/read-cursors";
import { ponderPresent, progressFrom, progressStatements, readProgress } from "./sql/read-progress";
import { reconcileStakes, retryRefused } from "./sql/reconcile-stakes";
import { recordEvents } from "./sql/record-events";
import { stepTables, tablesLeftSmall } from "./sql/step-tables";
import { anyUnwritten, leaveUnwritten, takeUnwritten } from "./sql/unwritten-developers";
import type { Change } from "./sql/write-developers";
import { ownChanges, ownWriteFailed, writeInStep } from "./sql/write-in-step";
import {
  behindCursor,
  type CatchUp,
  type Confirmed,
  confirmedBlocks,
  nothingNew,
  planWindows,
  type Window,
} from "./windows";

export type { CatchUp, RemovalGuard };

/** A chain the step synced: the window (from, to] and the events it added and removed. */
export type ChainStep = { chainId: number; from: number; to: number; added: number; removed: number };

export type StepResult =
  /** Ponder's tables are not there yet: nothing of Ponder's was read. */
  | { kind: "waiting-for-ponder" }
  /** No chain had anything to step, and no reconciliation was asked for. */
  | { kind: "idle" }
  | {
      kind: "stepped";
      /** Possibly none: every chain's removals may wait (`deferred`) while a reconciliation runs. */
      chains: ChainStep[];
      /**
       * Chains whose removals (some or all) wait: seen missing under no checkpoint but the
       * current one. Left out of the step, or, while Ponder is behind the cursor, stepped without them.
       */
      deferred: number[];
      /** With `reconcile`: (chain, wallet) stakes that had drifted from Ponder, repaired. */
      drifted: number;
      /** A chain was stepped while Ponder backfills it. */
      catchUp: boolean;
      /**
       * A chain was stepped while Ponder builds its indexes, its backfill over but not ready: the
       * block of its checkpoint, held back (trustedBlock), comes with the first step once it is.
       */
      besideIndexBuild: boolean;
      /**
       * Every chain was stepped early (windows.ts): the stakes folded, the developers left
       * unwritten for the next step (unwritten-developers.ts).
       */
      early: boolean;
      /** The queue's pending wallets after the step, when it read them: for the developers write. */
      pending?: string[];
      /** The step's developers, written by the step itself (write-in-step.ts). */
      written: Change[];
      /**
       * A step whose own write failed (an application's update since its snapshot, a refused
       * row): the step ran again with the queue's path. The first attempt's error.
       */
      fellBack?: unknown;
      /** A plain block's round trip was stopped (plainWindow), and the step ran again the usual way: why. */
      plainStopped?: PlainStop;
    };

export type StepOptions = {
  reconcile?: boolean;
  heads: Map<number, Head>;
  catchUp: CatchUp;
  /**
   * Ponder's tables were there at the last step, in this schema: its progress is read with the
   * BEGIN, one round trip fewer (a table gone since is asked about again, as on a first step).
   */
  ponderSeen?: boolean;
  /**
   * The developers table has its index on lower(wallet_address) (walletIndexed): the look-ups
   * may compute their wallets on the server, which PostgreSQL does not hash (see
   * findStaleTogether).
   */
  walletIndexed?: boolean;
  /**
   * A step may write its developers itself (write-in-step.ts): the loop's way. False: every
   * step queues, as a test compares, and as the loop does for a while after such a write failed.
   */
  writeInStep?: boolean;
  /**
   * A realtime block's step may send its diff with the rest in one round trip (plainWindow): the
   * loop's way. False: the diff in a round trip of its own, as a test compares.
   */
  plainBlock?: boolean;
  /** Told of each plain block's round trip that failed or was stopped, before the step runs again the usual way. */
  onPlainStop?: (reason: PlainStop, error: unknown) => void;
  /** The bound on each statement of it: by its size (WRITE_IN_STEP_MAX_MS, WRITE_IN_BLOCK_MAX_MS); a test's own. */
  writeInStepMaxMs?: number;
  /** What the term's steps saw of Ponder's reorg transactions (reorg-watch.ts); none: nothing held. */
  reorgWatch?: ReorgWatch;
  /** Told, inside the step's transaction, of the chains on which it takes applied events back. */
  onTakeBack?: (db: pg.ClientBase, chains: ChainStep[]) => Promise<void>;
};

/**
 * Statement errors of a step whose last round trip carried its own developers write, though not
 * one the write is there to meet (ownWriteFailed): the round fails as any step's, and the next
 * tries queue for a while (loop.ts), so that a lasting error of the application's table fails
 * only the developers write, as on the queue's path, and not every step with it. Any statement's
 * error, by its SQLSTATE alone: an application trigger's can be anything (a function it cannot
 * find, 42883; a table it names without its schema, 42P01, which the loop's classify takes for
 * Ponder's; a message that reads like a lost connection). Not the connection's or the server's
 * (class 08, 57P: a restart, a shutdown), nor a client's error without a SQLSTATE.
 */
const carriedOwnWrite = new WeakSet<object>();
export const statementError = (error: unknown) => {
  const { code } = (error ?? {}) as { code?: unknown };
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code);
};
export const failedWithOwnWrite = (error: unknown): boolean => error instanceof Object && carriedOwnWrite.has(error);

/** A step's own write failed: the step runs again without it (see write-in-step.ts). */
class WriteInStepFailed extends Error {
  constructor(readonly failure: unknown) {
    super("the step's own developers write failed", { cause: failure });
  }
}

/**
 * Runs in the caller's connection; the caller holds the leader lock on it. With `reconcile`,
 * a full reconciliation follows the step's diff in the same transaction. Every operation reads
 * Ponder through `config.ponderSchema`: with replicas, the instance followSource chose.
 */
export async function syncStep(
  db: pg.ClientBase,
  config: SidecarConfig,
  guard: RemovalGuard,
  options: StepOptions,
): Promise<StepResult> {
  const tries: Tries = { ownWrite: options.writeInStep ?? true, plainBlock: options.plainBlock ?? true, quiet: true };
  let fellBack: unknown;
  let stopped: PlainStop | undefined;
  for (;;) {
    try {
      const result = await stepSeen(db, config, guard, options, tries);
      if (result.kind === "again") {
        // The questions between blocks found something (their transaction committed, having
        // written nothing): a step of its own, which asks nothing first. An event gone from Ponder
        // is decided in the client: no plain block.
        tries.quiet = false;
        if (result.eventGone) tries.plainBlock = false;
        continue;
      }
      if (result.kind !== "stepped") return result;
      return {
        ...result,
        ...(fellBack === undefined ? {} : { fellBack }),
        ...(stopped ? { plainStopped: stopped } : {}),
      };
    } catch (error) {
      if (error instanceof NotAPlainBlock && tries.plainBlock) {
        // Rolled back before anything was decided of its removals: the guard is as it was.
        tries.plainBlock = false;
        stopped = error.reason;
        options.onPlainStop?.(error.reason, error.cause);
      } else if (error instanceof WriteInStepFailed && tries.ownWrite) {
        // Cleared, as after a failed round (loop.ts): the first attempt saw Ponder in a state that no
        // step committed, and what it noted (or forgot) of missing events counts for nothing.
        guard.clear();
        tries.ownWrite = false;
        fellBack = error.failure;
      } else {
        throw error;
      }
    }
  }
}

/**
 * What a step may try: its own developers write (write-in-step.ts); a plain block's one round
 * trip (plainWindow); the questions between blocks, answered with their COMMIT (`quiet`).
 */
type Tries = { ownWrite: boolean; plainBlock: boolean; quiet: boolean };

/** A step, or: the questions between blocks found something, and a step runs instead. */
type Attempt = StepResult | { kind: "again"; eventGone: boolean };

async function stepSeen(
  db: pg.ClientBase,
  config: SidecarConfig,
  guard: RemovalGuard,
  options: StepOptions,
  tries: Tries,
): Promise<Attempt> {
  if (options.ponderSeen) {
    try {
      return await stepOnce(db, config, guard, options, true, tries);
    } catch (error) {
      // Gone since (a `ponder dev` restart drops its tables): asked again, as a first step asks.
      if (!missingRelation(error)) throw error;
    }
  }
  return stepOnce(db, config, guard, options, false, tries);
}

async function stepOnce(
  db: pg.ClientBase,
  config: SidecarConfig,
  guard: RemovalGuard,
  { reconcile = false, heads, catchUp, walletIndexed = false, writeInStepMaxMs, reorgWatch, onTakeBack }: StepOptions,
  seen: boolean,
  { ownWrite, plainBlock, quiet: mayAsk }: Tries,
): Promise<Attempt> {
  // Past the developers table, every lock the step waits for, it waits for at most
  // SYNC_LOCK_WAIT_MS: an instance frozen in one of its own transactions fails the step, which is
  // tried again soon (loop.ts, retryAfter; with a replica to go to, the next round reads it as
  // absent and follows the other), instead of holding the developers table with it (lock-developers.ts).
  const table = reorgWatch ? await reorgTable(db, reorgWatch, config.ponderSchema) : null;
  const progressOptions = {
    lockEvents: true,
    reorgTable: table,
    reorgSince: reorgWatch && table ? reorgSince(reorgWatch, config.ponderSchema) : undefined,
  };
  const progressRead = progressStatements(config.ponderSchema, progressOptions);
  // The application's table first, then the cursors with the BEGIN (in the snapshot the whole
  // step reads), and with them Ponder's progress when its tables were there last step; else
  // whether they are there.
  const ponderRead = seen ? progressRead : ponderPresent(config.ponderSchema);
  const begin = [BEGIN_STEP, ...lockDevelopers(config), ...stepTables(db), ...cursorsStatements, ...ponderRead];
  // Whether the first round trip answered: its statement timeout is the wait for developers'.
  let answered = false;
  return inTransaction(db, begin, async (begun): Promise<Attempt | Committed<Attempt>> => {
    answered = true;
    // Each statement's rows, counted from the end (BEGIN_STEP holds several).
    const cursorRows = begun.at(-1 - ponderRead.length) ?? [];
    // After a step of few rows, committed: the next one deletes the step tables' rows (step-tables.ts).
    const leftSmall = () => tablesLeftSmall(db, begun.at(-1 - ponderRead.length - cursorsStatements.length));
    const progress = seen
      ? progressFrom(begun.at(-1) ?? [])
      : await readProgress(db, config.ponderSchema, progressOptions, yes(begun.at(-1)));
    // Nothing added to the step tables since the BEGIN emptied them, in these two either.
    if (!progress) {
      leftSmall();
      return { kind: "waiting-for-ponder" };
    }
    const cursors = cursorsFrom(cursorRows, config);
    // Chains whose checkpoint may vouch for rows a reorg transaction just deleted: no window.
    const reorged = reorgWatch ? reorgHeld(reorgWatch, config.ponderSchema, progress) : new Set<number>();
    let windows = planWindows(config, progress, cursors, heads, catchUp).filter((w) => !reorged.has(w.chainId));
    forgetChainsWithoutWindow(guard, windows);
    if (windows.length === 0 && !reconcile) {
      leftSmall();
      return { kind: "idle" };
    }
    // Most rounds are the poll's, between blocks: no new block, no removal awaiting confirmation.
    // Then the step below would change nothing unless Ponder deleted rows (a reorg's first half, a
    // crash recovery) or a developer just registered: asked as two yes/no questions in one round
    // trip (with the queue's pending wallets, for the developers write), not by the whole step
    // over an empty window (2.5 ms a round instead of 8.5, fast tier). Its outcome is the same:
    // every chain stepped to where it was, nothing added or removed.
    const quiet = mayAsk && !reconcile && guard.size === 0 && windows.every(nothingNew);
    if (quiet) {
      // Prepared on this connection (together.ts): most rounds are these, on windows of a few
      // blocks. With the COMMIT: the answer is nearly always "nothing", and otherwise a step runs
      // at once in a transaction of its own (the step's outcome is the same in a later snapshot).
      const read = pendingFor(config);
      const rows = await allRows(
        db,
        [
          ...ledgerMatches(config.ponderSchema, windows),
          ...anyRegistrations(config),
          ...anyUnwritten,
          ...read,
          ...COMMIT,
        ],
        { prepared: true },
      );
      leftSmall();
      const [ledger, registrations, unwritten] = rows;
      if (!yes(ledger) || yes(registrations) || yes(unwritten))
        return committed({ kind: "again", eventGone: !yes(ledger) });
      const chains = chainSteps(windows, new Map());
      return committed({ ...STEPPED_READY, chains, written: [], pending: pendingOf(read, rows) });
    }
    const read = pendingFor(config);
    const confirmed = () => confirmedBlocks(config, windows, cursors);
    // A step writes its developers itself (write-in-step.ts), with the index on their wallets (its
    // look-up is the server's, as findStaleTogether's); a reconciliation queues them.
    const ownWriteOf = (reconciling: boolean) =>
      ownWrite && !reconciling && config.mode === "write" && walletIndexed ? writeInStep(config, writeInStepMaxMs) : [];
    if (plainBlock && !reconcile && guard.size === 0 && walletIndexed && plainAgain(db) && windows.every(plainWindow)) {
      // A plain block (plainWindow): the diff goes with the rest of the step in one round trip,
      // stopped by the server (stopUnlessPlain) where it needs the client after all.
      const lead = [...diffStatements(config.ponderSchema, windows), ...deltaCountsStatements, ...stopUnlessPlain];
      const first = [...lead, ...lookUpsTogether(config, confirmed())];
      const { rows, written } = await lastRoundTrip(db, config, first, ownWriteOf(false), read, {
        prepared: true,
        plain: true,
      });
      leftSmall();
      const counts = countsFrom(rows[lead.length - 1 - stopUnlessPlain.length] ?? []);
      const chains = chainSteps(windows, counts);
      return committed({ ...STEPPED_READY, chains, pending: pendingOf(read, rows), written });
    }

    let counts = await diffEvents(db, config.ponderSchema, windows);
    const anyRemoved = [...counts.values()].some((c) => c.removed > 0);
    const { chains: deferred, held } = deferRemovals(guard, windows, anyRemoved ? await removedKeys(db) : new Map());
    if (held.length > 0) {
      await holdRemovals(db, held);
      counts = await deltaCounts(db);
    }
    // A chain stepped while Ponder backfills counts as a catch-up even when its removals wait: the
    // loop's catch-up share then still spaces these steps out.
    const catchingUp = windows.some((w) => !w.progress.ready);
    // With a window of new blocks: a due catch-up every 30 s of a long build steps an empty one.
    const besideIndexBuild = windows.some((w) => !w.progress.ready && w.progress.indexing && w.target > w.cursor);
    if (deferred.length > 0) {
      await leaveOutChains(db, deferred);
      windows = windows.filter((w) => !deferred.includes(w.chainId));
    }
    const waiting = [...deferred, ...held.map((h) => h.chainId)];
    // Taken early, every chain (windows.ts): the stakes folded, the developers left for the next
    // step, which writes them with its own.
    const early = !reconcile && windows.length > 0 && windows.every((w) => w.early);
    const stepped = {
      kind: "stepped" as const,
      chains: [],
      deferred: waiting,
      drifted: 0,
      catchUp: catchingUp,
      besideIndexBuild,
      early,
      written: [] as Change[],
    };
    if (windows.length === 0 && !reconcile) return stepped;
    // Events this step takes back: told in its transaction, so that what follows from them (the
    // other Ponder instances left, choose-source.ts leaveOnTakeBack) commits with it, or not at all.
    const takenBack = chainSteps(windows, counts).filter((c) => c.removed > 0);
    if (takenBack.length > 0) await onTakeBack?.(db, takenBack);
    if (early) {
      // The look-ups too (the stale developers and their first activations), though nothing is
      // queued: the step that writes these developers, after Ponder's backfill, then need not
      // search Ponder's events for their activations (a fifth of it, for the bench's 10,000).
      await findStaleDevelopers(db, config, confirmed(), FOLDED);
      const rows = await allRows(db, [...leaveUnwritten(config), ...advanceCursor, ...read, ...COMMIT]);
      return committed({ ...stepped, chains: chainSteps(windows, counts), pending: pendingOf(read, rows) });
    }

    // The ledger, the stakes and the affected developers go with the queue's first look-up, but
    // for a reconciliation, which runs between them. Only chains with a window that reaches the
    // cursor are reconciled: Ponder may be behind the others (its events above its checkpoint are
    // not there yet), or backfilling them (not due for a catch-up step).
    let drifted = 0;
    if (reconcile) {
      await runTogether(db, [...FOLDED, ...takeUnwritten(config)]);
      drifted = await reconcileStakes(
        db,
        config,
        windows.filter((w) => !behindCursor(w)),
      );
      if (config.mode === "write") await retryRefused(db);
    }
    // Once Ponder has backfilled every chain stepped (its indexes are there), and with the index
    // on the developers' wallets, a step of a few events sends the ledger, the stakes, the
    // affected developers and the queue's look-ups with the queue, the cursor, what the developers
    // write takes next and the COMMIT, in the last round trip (lastRoundTrip). Else the look-ups
    // pass them through the client: a bound array is what the planner sizes, and hashes.
    const events = [...counts.values()].reduce((n, c) => n + c.added + c.removed, 0);
    const together =
      walletIndexed && !reconcile && events <= TOGETHER_MAX_EVENTS && windows.every((w) => w.progress.ready);
    const first = together ? lookUpsTogether(config, confirmed()) : [];
    if (!together) {
      const changes = [...FOLDED, ...takeUnwritten(config), ...findRegistrations(config)];
      await findStaleDevelopers(db, config, confirmed(), reconcile ? [] : changes);
    }
    const { rows, written } = await lastRoundTrip(db, config, first, ownWriteOf(reconcile), read, {
      prepared: together,
    });
    if (together) leftSmall();
    const chains = chainSteps(windows, counts);
    return committed({ ...stepped, chains, drifted, pending: pendingOf(read, rows), written });
  }).catch(async (error: unknown) => {
    throw !answered && (await ranOutASlice(db, config, error)) ? new DevelopersBusy(error) : error;
  });
}

/** The ledger, the stakes and the affected developers, from `sync_delta`. */
const FOLDED = [...recordEvents, ...addChainStake, ...markAffected];

/** A step whose every chain was ready, with no removal and nothing deferred. */
const STEPPED_READY = {
  kind: "stepped" as const,
  deferred: [],
  drifted: 0,
  catchUp: false,
  besideIndexBuild: false,
  early: false,
} satisfies Partial<StepResult>;

/** The queue's pending wallets, from the end of a last round trip (the COMMIT's rows come last). */
const pendingOf = (read: Statements, rows: unknown[][]) =>
  read.length > 0 ? walletsFrom(rows.at(-1 - COMMIT.length) ?? []) : undefined;

/**
 * Where Ponder has backfilled every chain stepped (its indexes are there), and with the index on
 * the developers' wallets, a step of a few events sends the ledger, the stakes, the affected
 * developers and the queue's look-ups (their wallets computed by the server, see
 * findStaleTogether) in its last round trip.
 */
const lookUpsTogether = (config: SidecarConfig, confirmed: Map<number, Confirmed>): Statements => [
  ...FOLDED,
  ...takeUnwritten(config),
  ...findRegistrations(config),
  ...findStaleTogether(config, confirmed),
];

/**
 * The step's last round trip: `first`, the step's own developers write (`own`, write-in-step.ts),
 * the queue, the cursor, what the developers write takes next (`read`) and the COMMIT. With its
 * own write, a realtime block's round is one commit, not two (the developers write after it finds
 * the queue empty); the rows the write locks are never held across a round trip (a sidecar frozen
 * in between would hold them from the application). `prepared`: a realtime step's statements,
 * prepared on this connection (together.ts); not a catch-up's. `plain`: a plain block's round
 * trip, its diff in `first` (plainFailed).
 */
async function lastRoundTrip(
  db: pg.ClientBase,
  config: SidecarConfig,
  first: Statements,
  own: Statements,
  read: Statements,
  { prepared, plain = false }: { prepared: boolean; plain?: boolean },
): Promise<{ rows: unknown[][]; written: Change[] }> {
  const last = [...first, ...own, ...queueDevelopers(config), ...advanceCursor];
  const rows = await allRows(db, [...last, ...read, ...COMMIT], { prepared }).catch((error: unknown) => {
    // A plain block's: the step runs again the usual way, which tells whose error it is (plainFailed).
    if (plain) throw plainFailed(db, error, own.length > 0);
    // A failure the own write is there to meet (ownWriteFailed): the step runs again without it,
    // and what fails then fails the round. Any other fails the round now, counted and retried
    // after its wait as any step's: a realtime step's last round trip carries its look-ups and
    // the queue too, whose errors are not the write's.
    if (own.length > 0 && ownWriteFailed(error)) throw new WriteInStepFailed(error);
    if (own.length > 0 && statementError(error)) carriedOwnWrite.add(error as object);
    throw error;
  });
  return { rows, written: ownChanges(rows.slice(first.length, first.length + own.length)) };
}

/**
 * A realtime block's events, with room: above it (a sidecar back after an outage, with Ponder
 * ready) the look-ups take the path that catch-ups take. The queue's developers write takes it as
 * the bound of a write planned once (apply-developers.ts); a step's own write is bounded by the
 * developers it takes (write-in-step.ts), which registrations and an early step's may make
 * thousands.
 */
export const TOGETHER_MAX_EVENTS = 1000;

/**
 * A window a realtime block's step takes in one round trip after its BEGIN: Ponder ready, at or
 * ahead of the cursor (behind it, removals are expected, see planWindows) by at most a few blocks
 * (a sidecar back after an outage has more events than a block's, whose look-ups take the
 * catch-up's path). What decides the usual way in the client is told only by the diff: an event
 * gone from Ponder (deferRemovals), more than TOGETHER_MAX_EVENTS events; the server stops the
 * round trip there (stopUnlessPlain), and the step runs again the usual way.
 */
function plainWindow(w: Window): boolean {
  return w.progress.ready && !behindCursor(w) && w.target - w.cursor <= PLAIN_MAX_BLOCKS;
}
const PLAIN_MAX_BLOCKS = 16;

/** Why a plain block's round trip was stopped: by the server (stopUnlessPlain), or by any error of a statement of it. */
export type PlainStop = "event_gone" | "events" | "error";

/** After the diff and its counts: stops the round trip unless the diff found a plain block's (plainWindow). */
const STOP_GONE = "an event gone from Ponder";
const STOP_EVENTS = `more than ${TOGETHER_MAX_EVENTS} events`;
const stopUnlessPlain: Statements = [
  `SELECT stakesync.stop_unless(NOT EXISTS (SELECT 1 FROM sync_delta WHERE change = 'removed'), '${STOP_GONE}')`,
  `SELECT stakesync.stop_unless((SELECT coalesce(sum(events), 0) FROM sync_delta) <= ${TOGETHER_MAX_EVENTS},
     '${STOP_EVENTS}')`,
];

/** A plain block's round trip failed: the step runs again the usual way. */
class NotAPlainBlock extends Error {
  constructor(
    readonly reason: PlainStop,
    cause: unknown,
  ) {
    super(`not a plain block (${reason}): the step runs again the usual way`, { cause });
  }
}

/**
 * What a plain block's round trip failing leads to. Stopped by the server: the step runs again the
 * usual way. So it does after any other statement's error (a lock waited for too long, an
 * application trigger's): that round trip carries the diff and the look-ups, and the usual way
 * tells whose error it is (the own write's, write-in-step.ts, or the round's). Not an error of
 * the connection or the server, which fails the round. Too many events: for PLAIN_PAUSE_MS the
 * steps on this connection take the usual way at once (a backlog of busy blocks would otherwise
 * diff each block twice).
 */
function plainFailed(db: object, error: unknown, ownWrite: boolean): unknown {
  const { code, where, detail } = (error ?? {}) as { code?: unknown; where?: unknown; detail?: unknown };
  // The function as the server names it in the error's CONTEXT: without its schema where the
  // session's search_path holds it (a role named stakesync), and in the server's language around it.
  const stop = code === "SS001" && /(^|[ .])stop_unless\(boolean,text\)/.test(String(where));
  const reason = stop ? STOPS.get(detail) : undefined;
  if (reason === "events") pausedAt.set(db, performance.now());
  if (reason) return new NotAPlainBlock(reason, error);
  // The own write's bound run out (a slow application trigger): the usual way would wait as long
  // again before falling back (write-in-step.ts). Not a lock waited for too long: the diff's and
  // the look-ups' waits fail so too (an operator's lock on the sidecar's tables), and the usual
  // way tells whose it was.
  if (ownWrite && code === "57014") return new WriteInStepFailed(error);
  return statementError(error) ? new NotAPlainBlock("error", error) : error;
}

const STOPS = new Map<unknown, PlainStop>([
  [STOP_GONE, "event_gone"],
  [STOP_EVENTS, "events"],
]);

/** After a stop for too many events, how long steps on the connection take the usual way. */
const PLAIN_PAUSE_MS = 60_000;
const pausedAt = new WeakMap<object, number>();
const plainAgain = (db: object) => performance.now() - (pausedAt.get(db) ?? Number.NEGATIVE_INFINITY) >= PLAIN_PAUSE_MS;

/** The queue's pending wallets, read for the developers write; shadow mode writes none. */
const pendingFor = (config: SidecarConfig) => (config.mode === "shadow" ? [] : pendingWallets(config));

function chainSteps(windows: Window[], counts: Map<number, EventCounts>): ChainStep[] {
  return windows.map((w) => ({
    chainId: w.chainId,
    from: w.lower,
    to: Math.max(w.target, w.cursor),
    added: counts.get(w.chainId)?.added ?? 0,
    removed: counts.get(w.chainId)?.removed ?? 0,
  }));
}

/**
 * A catch-up step sorts tens of thousands of events: in memory, not in temp files. And it runs on
 * one core: parallel workers would take the machine from Ponder's backfill. Then the developers
 * table, and every other lock waited for at most SYNC_LOCK_WAIT_MS (lock-developers.ts).
 *
 * Its COMMIT does not wait for the WAL flush (synchronous_commit off, as Ponder commits its own
 * rows): the flush was a millisecond of a realtime block's round at the median and 19–21 ms
 * at its tail (docs/performance.md, "The eighteenth session"). What a crash of PostgreSQL, or a
 * failover, can then take back is the last steps' commits, each whole: their developers rows,
 * audit, welcome jobs and cursor together, and never Ponder's rows without them (WAL is lost from
 * its end, and Ponder's commit comes before the step that reads it). The sidecar, back, finds its
 * cursor where the surviving commit left it and steps again. No welcome email goes out before a
 * synchronous commit has flushed the step: the outbox worker claims the job in a commit of its
 * own, which flushes the WAL up to it, the step's commit included, before it sends (pools.ts;
 * test/fast/step-commit.test.ts). What a step's commit told meanwhile (an HTTP answer, a log
 * line, a webhook's "resolved") is told again when the step runs again.
 */
const BEGIN_STEP = `BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '64MB';
  SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL synchronous_commit = off`;

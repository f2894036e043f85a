/**
 * The leader's loop: take the leader lock, then sync whenever Ponder commits (LISTEN on its
 * live-query channel) or the poll interval passes, and reconcile on schedule or on request.
 * Errors are counted by kind and retried with exponential backoff, forever: a database or
 * Ponder outage pauses the sync, it never ends the process.
 */
import type pg from "pg";
import type { Logger } from "pino";
import { backoffMs } from "../../lib/backoff";
import type { SidecarConfig } from "../../lib/config";
import { answeredWithin } from "../../lib/wait";
import type { Head } from "../chain-heads";
import { walletIndexed } from "../db/developers-table";
import type { Queryable } from "../db/queryable";
import { acquireLeadership, holdsLeaderLock, LEADER_SILENCE_LIMIT_S } from "../leader";
import type { Metrics } from "../metrics";
import { errorText, redact } from "../redact";
import { type Applied, applyDevelopers, type Change, NOTHING } from "./apply-developers";
import { followSource, newWatch, noteTakenBack, startWatch } from "./choose-source";
import { newReorgWatch } from "./reorg-watch";
import { developersBusy } from "./sql/lock-developers";
import { LOCK_NOT_AVAILABLE } from "./sql/read-progress";
import { clearWriteFailing, noteWriteFailing, writeFailingNoted } from "./sql/write-failing";
import {
  type CatchUp,
  failedWithOwnWrite,
  type PlainStop,
  type RemovalGuard,
  type StepResult,
  statementError,
  syncStep,
} from "./step";

/** How often a leader that sleeps or backs off pings its connection: well within LEADER_SILENCE_LIMIT_S. */
const PING_MS = 1000;
/** After a step's own write failed, how long steps queue their developers instead (noteFellBack). */
const QUEUE_ONLY_MS = 10 * 60_000;
/** While Ponder backfills, the share of time catch-up steps may take: one of d, then 4·d without. */
const CATCH_UP_SHARE = 0.2;
/**
 * Developers wait at most this long for a catch-up step during a long backfill; a shorter one
 * gets a single catch-up near its end (see CatchUp).
 */
const CATCH_UP_WAIT_MS = 30_000;

/**
 * How often the loop polls while an early step's developers wait (unwritten-developers.ts) for
 * the step that ends Ponder's backfill: Ponder sends no NOTIFY while it backfills, and that step
 * begins once Ponder builds its indexes (windows.ts), a tenth of a second before its /ready at
 * 100,000 events. At SYNC_POLL_MS (100 ms) the step began 60–180 ms after the backfill's last
 * batch, and once missed the build. A round that finds nothing costs about half a millisecond.
 */
const BACKFILL_END_POLL_MS = 20;
/**
 * After a step beside Ponder's index build, the loop polls at BACKFILL_END_POLL_MS for this long,
 * or until a step has run with Ponder ready: that step takes the block the one beside the build
 * held back (trustedBlock), and Ponder turns ready with no NOTIFY (a tenth of a second after its
 * build at 100,000 events; seconds at millions, or after a restart's rebuild).
 */
const READY_WAIT_MS = 60_000;

/** A step that read Ponder's tables. */
type Synced = Exclude<StepResult, { kind: "waiting-for-ponder" }>;

export type ErrorKind = "database" | "ponder" | "sync";

export type LoopState = {
  role: "leader" | "standby";
  /** While leader: the backend pid of the connection holding the leader lock (the fence). */
  leaderPid: number | null;
  /**
   * While leader: its server's start (leader.ts SERVER_START), which the fences check with the
   * pid; null (or unset) checks the pid alone.
   */
  leaderServer?: string | null;
  /** How many terms this sidecar has led: a term ended and begun again between two looks at it is another. */
  terms?: number;
  consecutiveErrors: number;
  lastError: { kind: ErrorKind; message: string; at: string } | null;
  /**
   * Tries to lead in a row that could not reach the database or were refused by it, counted at
   * the pace of a failing round's retries (`unreachable`), and the last one's error: this
   * sidecar's own view, leader or not, paged as `database_unreachable` (monitor.ts checkUnreachable).
   */
  unreachable: { tries: number; error: string | null };
  lastSyncAt: string | null;
  /**
   * A round of this leader's term has committed and written its developers: until then a
   * `consecutive_errors` page the last leader left stands (monitor.ts), since a new term's count
   * starts at 0 whatever still fails.
   */
  syncedThisTerm: boolean;
  /** The schema of the Ponder instance the sync reads (PONDER_REPLICA_SCHEMAS; else always one). */
  source: string;
  /**
   * The Ponder schemas whose commits this leader could not make durable, for want of the TRIGGER
   * privilege (durable-ponder.ts): a PostgreSQL crash may lose their last blocks. [] on a standby.
   */
  ponderNotDurable: string[];
};

export type LoopHooks = {
  /**
   * After every commit that changed developers: a step's own write (also when the queue's
   * write after it fails the round), the queue's write.
   */
  onChanges?: (changes: Change[]) => void;
  /**
   * Other connections (the effects' pool), over which the leader asks the server once a second
   * whether its lock is still held by its session (confirmLeadership).
   */
  confirmOver?: Queryable;
};

/** What a reconciliation asked for is answered while Ponder's tables are missing. */
export const PONDER_NOT_THERE = "Ponder's tables are not there yet";
/** What a reconciliation asked for is answered when the sidecar stood down before it ran. */
export const LEADERSHIP_LOST = "leadership lost";

/** What a round whose developers write waited a slice for a lock notes and answers a reconciliation asked for. */
export const WRITE_WAITS =
  "the developers write waits for a lock on the developers table held by another session (an application's migration?)";

/** How often a leader asks, over another connection, whether the server still has its lock. */
const CONFIRM_MS = 1000;

/** What a reconciliation request resolves with. */
export type ReconcileResult = { drifted: number; changes: Change[] };

export function classify(error: unknown): ErrorKind {
  const code = (error as { code?: string }).code ?? "";
  // Ponder's schema or tables missing; or a replica-backed step not waiting for a frozen Ponder's lock.
  if (code === "42P01" || code === "3F000" || code === "55P03") return "ponder";
  // A database that refuses, drops, or never answers (a partition, a dead address, DNS).
  if (
    /^(08|57P|53)/.test(code) ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|timeout expired|terminat|Connection|closed/i.test(
      String(error),
    )
  ) {
    return "database";
  }
  return "sync";
}

/**
 * How long a failed round waits before the next, and whether a wake-up (Ponder's NOTIFY) may end
 * the wait sooner. A lock that outlasted the step's wait (55P03: a Ponder frozen inside its reorg
 * or crash recovery, SYNC_LOCK_WAIT_MS) is tried again after RETRY_DELAY_MS, or at Ponder's next
 * commit: the step already waited, and a backoff grown over the outage could leave Ponder unread
 * for up to a minute after it went on. Any other error backs off (lib/backoff.ts) for its full time.
 */
export function retryAfter(error: unknown, retryDelayMs: number, failures: number): [number, { backoff: boolean }] {
  if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return [retryDelayMs, { backoff: false }];
  return [backoffMs(retryDelayMs, failures), { backoff: true }];
}

export class SyncLoop {
  readonly state: LoopState;
  private stopped = false;
  /** When the last unreachable try was counted (`unreachable` paces its count by it). */
  private unreachableAt = 0;
  /** An outage of the database counted and not over yet (noteOutage). */
  private outageNoted = false;
  /** This term's last answer to confirmLeadership's question, and on the leader's own connection. */
  private confirmedAt = 0;
  private leaderHeardAt = 0;
  /** Set by a wake-up that arrives while a step runs, so the next sleep is skipped. */
  private woken = false;
  /** Said once a process: the leader connection lacks tcp_user_timeout (LeaderConnection). */
  private userTimeoutWarned = false;
  /** How this term's leader connection was lost; set, it also ends a round's backoff (see sleep). */
  private connectionLost: Error | undefined;
  private wake: (() => void) | undefined;
  /** A round's statements are on the leader's connection: no ping then (see lead). */
  private inRound = false;
  private reconcileRequests: {
    resolve: (r: ReconcileResult) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private nextReconcileAt = 0;
  private waitingForPonder = false;
  /** What this term's steps saw of Ponder's reorg transactions (reorg-watch.ts). */
  private reorgWatch = newReorgWatch();
  /** The last round waited for a lock on developers (noteDevelopersBusy). */
  private developersBusy = false;
  /** The schema whose Ponder tables the last step found (see StepOptions.ponderSeen). */
  private ponderSeenIn: string | undefined;
  /** Whether the developers table has its wallet index, looked up at the start of each term. */
  private walletIndexed = false;
  /** While Ponder backfills, no catch-up step before this time (performance.now()). */
  private nextCatchUpAt = 0;
  /** When a step last brought a chain up to Ponder (performance.now()). */
  private steppedAt = 0;
  /** An early step left developers unwritten, and no step has written them since. */
  private unwrittenWait = false;
  /** Until then (performance.now()), a block held back beside Ponder's index build waits for its /ready. */
  private readyWaitUntil = 0;
  /**
   * No step writes its developers itself before this time (performance.now()): one did and
   * was run again, and the application's table will likely make the next do so too.
   */
  private queueOnlyUntil = Number.NEGATIVE_INFINITY;
  /** This term has logged a realtime block's failed round trip (notePlainStop). */
  private plainErrorLogged = false;
  /** The leader connection's server, by its start (leader.ts): confirmLeadership asks there. */
  private leaderServer: string | undefined;
  /**
   * The queue's developers write failed this many times in a row (and no step failed since):
   * it is tried again from `writeRetryAt` (performance.now()), backed off as a failed round is,
   * while the steps go on at their pace (writeFailed).
   */
  private writeFailures = 0;
  private writeRetryAt = Number.NEGATIVE_INFINITY;
  /** stakesync.developers_write_failing has its row (write-failing.ts): the next success clears it. */
  private writeFailingNoted = false;
  private readonly removalGuard: RemovalGuard = new Map();
  private sourceWatch = newWatch();
  private readonly deferredChains = new Set<number>();
  private finished: Promise<void> | undefined;
  /** The connection that holds the leader lock, while this sidecar leads. */
  private leaderClient: pg.Client | undefined;

  constructor(
    private readonly config: SidecarConfig,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /** Each chain's head, to tell how far a backfilling Ponder still has to go. */
    private readonly heads: Map<number, Head>,
    private readonly hooks: LoopHooks = {},
  ) {
    this.state = {
      role: "standby",
      leaderPid: null,
      leaderServer: null,
      terms: 0,
      consecutiveErrors: 0,
      lastError: null,
      unreachable: { tries: 0, error: null },
      lastSyncAt: null,
      syncedThisTerm: false,
      source: config.ponderSchema,
      ponderNotDurable: [],
    };
  }

  start() {
    this.finished = this.run();
  }

  async stop() {
    this.stopped = true;
    this.wakeUp();
    await this.finished;
  }

  private wakeUp() {
    this.woken = true;
    this.wake?.();
  }

  /**
   * Asked once a second while leading, a stop included, over another connection: if the server
   * no longer has this leader's lock, its connection has gone dark while the server ended its
   * session (in a round too, whose statement would otherwise wait for TCP to give up). The
   * connection is closed: its statement fails, and the loop stands by. When neither these
   * questions nor the leader's own connection have had an answer for LEADER_SILENCE_LIMIT_S, the
   * server has ended a session it heard nothing from, or this host is cut off from it: the
   * connection is closed too, rather than wait minutes for TCP before standing by, counting
   * the tries to lead again, and paging. One side alone failing (a pool out of connections while
   * the leader's own answers; a long statement of a round while the questions are answered)
   * changes nothing.
   */
  private async confirmLeadership(db: Queryable) {
    const pid = this.state.leaderPid;
    const client = this.leaderClient;
    if (this.state.role !== "leader" || pid === null || !client) return;
    const limitMs = LEADER_SILENCE_LIMIT_S * 1000;
    let held: boolean;
    try {
      held = await answeredWithin(holdsLeaderLock(db, pid, this.leaderServer), limitMs);
    } catch (error) {
      if (this.leaderClient !== client) return; // a new term meanwhile
      const now = performance.now();
      if (now - this.confirmedAt <= limitMs || now - this.leaderHeardAt <= limitMs) return;
      this.log.warn(
        { leader_pid: pid, err: errorText(error) },
        "the database is out of reach; closing the leader's connection",
      );
      await client.end().catch(() => undefined);
      return;
    }
    if (this.leaderClient !== client || this.state.leaderPid !== pid) return; // a new term meanwhile
    this.confirmedAt = performance.now();
    if (held) return;
    this.log.warn({ leader_pid: pid }, "the server no longer has this sidecar's leader lock; closing its connection");
    await client.end().catch(() => undefined);
  }

  /**
   * The Ponder schemas whose commits this term could not make durable (durable-ponder.ts): said
   * once each in the log, and while it lasts in the state (/status, a metric); and said again
   * once a grant has let it.
   */
  private notDurableLogged = new Set<string>();
  private noteNotDurable() {
    const { refused } = this.reorgWatch.durable;
    for (const [schema, reason] of refused) {
      if (this.notDurableLogged.has(schema)) continue;
      this.notDurableLogged.add(schema);
      this.log.warn(
        { schema, err: reason },
        "cannot make Ponder's commits durable (no TRIGGER privilege on its stake_event: docs/sql/roles.sql): a PostgreSQL crash may lose its last blocks while it runs on; restart Ponder after one",
      );
    }
    for (const schema of this.notDurableLogged) {
      if (refused.has(schema)) continue;
      this.notDurableLogged.delete(schema);
      // Only a try that made them durable ends a refusal (settleDurable).
      this.log.info({ schema }, "Ponder's commits are made durable now");
    }
    this.state.ponderNotDurable = [...refused.keys()].sort();
  }

  /** Runs a reconciliation on the leader and resolves with its result. */
  requestReconcile(): Promise<ReconcileResult> {
    if (this.state.role !== "leader") return Promise.reject(new Error(LEADERSHIP_LOST));
    return new Promise((resolve, reject) => {
      this.reconcileRequests.push({ resolve, reject });
      this.wakeUp();
    });
  }

  private async run() {
    while (!this.stopped) {
      const connection = await acquireLeadership(
        this.config.database.url,
        this.log,
        () => this.stopped,
        (error) => (error === undefined ? this.reached() : this.unreachable(error)),
      );
      if (!connection) break;
      this.state.syncedThisTerm = false;
      this.plainErrorLogged = false;
      this.state.role = "leader";
      this.state.leaderPid = connection.pid;
      this.state.leaderServer = connection.server;
      this.state.terms = (this.state.terms ?? 0) + 1;
      this.leaderServer = connection.server;
      if (!connection.userTimeout && !this.userTimeoutWarned) {
        this.userTimeoutWarned = true;
        this.log.warn(
          "the leader's connection has no tcp_user_timeout (a Unix socket, or a platform without it): frozen while the server sends it a large answer (a round of thousands of developers), a leader keeps its lock until it thaws; point DATABASE_URL at the server over TCP",
        );
      }
      this.leaderClient = connection.client;
      this.metrics.isLeader.set(1);
      this.log.info("leader: syncing");
      try {
        await this.lead(connection.client, connection.lost);
      } catch (error) {
        this.fail(error);
      } finally {
        this.state.role = "standby";
        this.state.syncedThisTerm = false;
        this.state.leaderPid = null;
        this.state.leaderServer = null;
        this.leaderClient = undefined;
        // A standby reads nothing; its /status shows the first instance, where a next term starts.
        this.state.source = this.config.ponderSchema;
        // Nor does it make Ponder's commits durable: the leader's state says whether it could.
        this.state.ponderNotDurable = [];
        this.notDurableLogged.clear();
        this.metrics.isLeader.set(0);
        for (const request of this.reconcileRequests.splice(0)) request.reject(new Error(LEADERSHIP_LOST));
        await connection.client.end().catch(() => undefined);
      }
      // A standby reports no errors of its own: a count left from its time as leader would show
      // on its /status and metrics, through the backoff too, while another sidecar leads.
      const backoff = backoffMs(this.config.retryDelayMs, this.state.consecutiveErrors);
      this.state.consecutiveErrors = 0;
      if (!this.stopped) await this.sleep(backoff, { backoff: true });
    }
  }

  private async lead(db: pg.Client, lost: Promise<Error>) {
    this.connectionLost = undefined;
    lost.then((error) => {
      this.connectionLost = error;
      this.wakeUp();
    });
    db.on("notification", () => this.wakeUp());
    // The monotonic clock: a wall clock stepped back while cut off would keep a dark leader leading.
    this.confirmedAt = performance.now();
    this.leaderHeardAt = performance.now();
    const heard = () => {
      if (this.leaderClient === db) this.leaderHeardAt = performance.now();
    };
    // The server ends a silent leader's session (LEADER_SILENCE_LIMIT_S): while this loop sleeps
    // or backs off, a ping keeps a live leader's session, and its lock, alive. Inside a step's
    // transaction the ping waits its turn; a process stalled that long between two statements
    // loses the session and the lock, as a frozen one does. No ping during a round: its own
    // statements keep the session, and a ping queued behind one of them ran before the next,
    // one more round trip in one round a second (a block's round, at times: its latency). One ping
    // at a time: on a connection gone dark they queued up, one a second, until the term ended
    // (and pg 8 warns of a query queued behind another, which pg 9 is to refuse).
    let pinging = false;
    const ping = setInterval(() => {
      if (this.inRound || pinging) return;
      pinging = true;
      db.query("SELECT 1")
        .then(heard, () => undefined)
        .finally(() => {
          pinging = false;
        });
    }, PING_MS);
    const { confirmOver } = this.hooks;
    let confirming = false;
    const confirm = setInterval(() => {
      if (!confirmOver || confirming) return;
      confirming = true;
      this.confirmLeadership(confirmOver)
        .catch(() => undefined)
        .finally(() => {
          confirming = false;
        });
    }, CONFIRM_MS);
    try {
      await this.leadOn(db, () => this.connectionLost);
    } finally {
      clearInterval(ping);
      clearInterval(confirm);
    }
  }

  private async leadOn(db: pg.Client, lostError: () => Error | undefined) {
    for (const schema of [this.config.ponderSchema, ...this.config.ponderReplicaSchemas]) {
      await db.query(`LISTEN "${schema}_live_query"`);
    }
    // A new leader reconciles at once: whatever changed while no sidecar wrote (an application's
    // edits, another system's writes before a cut-over from shadow mode) is not left waiting for
    // RECONCILE_INTERVAL_MS.
    this.nextReconcileAt = performance.now();
    this.steppedAt = performance.now();
    // And it forgets what an earlier term saw missing in Ponder: while this sidecar did not lead, Ponder
    // went on unseen (as after a failed round, below), and a sighting from then would let a
    // later checkpoint confirm a removal of an event that came back meanwhile.
    this.removalGuard.clear();
    this.reorgWatch = newReorgWatch();
    this.ponderSeenIn = undefined;
    this.readyWaitUntil = 0;
    // A new term tries the developers write at once, as it reconciles at once; a failure the
    // last leader noted is cleared by this one's first write that succeeds.
    this.writeFailures = 0;
    this.writeRetryAt = Number.NEGATIVE_INFINITY;
    this.writeFailingNoted = await writeFailingNoted(db);
    this.walletIndexed = await walletIndexed(db, this.config.developersTable);
    // What the instances showed then is no measure of them now, but for those a step left.
    this.sourceWatch = await startWatch(db, this.config);

    while (!this.stopped) {
      const lost = lostError();
      if (lost) throw lost;
      const reconcile = this.reconcileRequests.length > 0 || performance.now() >= this.nextReconcileAt;
      const requests = reconcile ? this.reconcileRequests.splice(0) : [];
      let applied = false;
      this.inRound = true;
      try {
        const startedAt = performance.now();
        const config = await followSource(
          db,
          this.config,
          this.state.source,
          this.removalGuard,
          this.sourceWatch,
          this.reorgWatch.durable,
        );
        this.noteSource(config.ponderSchema);
        const step = await syncStep(db, config, this.removalGuard, {
          reconcile,
          heads: this.heads,
          catchUp: this.catchUp(startedAt),
          ponderSeen: this.ponderSeenIn === config.ponderSchema,
          walletIndexed: this.walletIndexed,
          writeInStep: startedAt >= this.queueOnlyUntil,
          onPlainStop: (reason, error) => this.notePlainStop(reason, error),
          reorgWatch: this.reorgWatch,
          // Another instance that may still show what it takes back is not read until it
          // commits (choose-source.ts, leaveOnTakeBack): recorded with the step's commit.
          onTakeBack: (tx, chains) => noteTakenBack(tx, this.config, this.sourceWatch, config.ponderSchema, chains),
        });
        // A step's own developers are committed with it: reported now, also when the write of
        // the queue below fails the round.
        const own = step.kind === "stepped" ? step.written : [];
        this.noteChanges(own);
        this.noteNotDurable();
        if (step.kind === "stepped" && step.fellBack !== undefined) this.noteFellBack(step.fellBack, startedAt);
        this.ponderSeenIn = step.kind === "waiting-for-ponder" ? undefined : config.ponderSchema;
        // Left by this step, or still waiting: any other step that synced (a reconciliation too)
        // took them. Not while Ponder's tables are gone (a `ponder dev` restart): its backfill
        // begins anew, and its end is minutes away.
        if (step.kind === "stepped") {
          this.unwrittenWait = step.early || (this.unwrittenWait && step.chains.length === 0 && !reconcile);
          // Ended by any step with Ponder ready (catchUp is false then, also for a chain whose
          // removals wait), not only by one that synced a chain.
          if (step.besideIndexBuild) this.readyWaitUntil = startedAt + READY_WAIT_MS;
          else if (!step.catchUp) this.readyWaitUntil = 0;
        } else if (step.kind === "waiting-for-ponder") this.unwrittenWait = false;
        const writeStartedAt = performance.now();
        // Written in a transaction of its own: see apply-developers.ts. Also when the step had
        // nothing new, for developers an application transaction held last time. Not while an
        // earlier write's failure backs off (below), but for a reconciliation asked for, whose
        // answer is what the write did.
        const writeDue = step.kind !== "waiting-for-ponder" && (startedAt >= this.writeRetryAt || requests.length > 0);
        let writeFailure: unknown;
        const queued = !writeDue
          ? NOTHING
          : await applyDevelopers(db, this.config, step.kind === "stepped" ? step.pending : undefined, {
              walletIndexed: this.walletIndexed,
            }).catch((error: unknown) => {
              // A lost connection (a restart) fails the round, as the step's would. Any statement's
              // error is the write's, by its SQLSTATE (step.ts statementError): the application's
              // trigger may raise any code or message.
              if (lostError() || !statementError(error)) throw error;
              writeFailure = error;
              return NOTHING;
            });
        this.noteChanges(queued.changes);
        this.noteDevelopersBusy(queued.waited === true);
        // The write waited a slice for a lock (apply-developers.ts): neither a failure (nothing
        // counted or backed off: a migration is waited for) nor a success.
        const writeWaited = queued.waited === true ? new Error(WRITE_WAITS) : undefined;
        // A step writes its developers itself (write-in-step.ts): the round's changes are both.
        const written = { ...queued, changes: [...own, ...queued.changes] };
        const endedAt = performance.now();
        const durationMs = endedAt - startedAt;
        const writeMs = endedAt - writeStartedAt;
        this.metrics.stepDuration.observe(durationMs / 1000);
        this.noteWaitingForPonder(step.kind === "waiting-for-ponder");
        if (step.kind === "waiting-for-ponder") {
          for (const request of requests) request.reject(new Error(PONDER_NOT_THERE));
          // Asked for, it stays due: the next round that reads Ponder reconciles.
          if (requests.length > 0) this.nextReconcileAt = 0;
        } else {
          if (reconcile) this.nextReconcileAt = performance.now() + this.config.reconcileIntervalMs;
          const drifted = step.kind === "stepped" ? step.drifted : 0;
          applied = this.recordStep(step, written, startedAt, durationMs, writeMs);
          for (const request of requests) {
            const failed = writeFailure ?? writeWaited;
            if (failed === undefined) request.resolve({ drifted, changes: written.changes });
            else request.reject(failed);
          }
        }
        if (writeFailure !== undefined) {
          this.writeFailed(writeFailure);
          // For every sidecar's /ready (write-failing.ts), at each failed try (a failing round's
          // statement, none in a healthy one). Not noted: the round stands all the same.
          await noteWriteFailing(db, errorText(writeFailure), this.writeFailures > 1).then(
            () => {
              this.writeFailingNoted = true;
            },
            (error: unknown) => this.log.warn({ err: errorText(error) }, "could not note the developers write failing"),
          );
        } else if (writeWaited !== undefined) {
          // Noted as the write failing, the episode's start kept, so that /ready says so once it
          // has lasted (WRITE_FAILING_READY_S) while the cursor goes on: a slice run out is no
          // success, and clearing the note each time kept /ready at 200 for as long as a long
          // CREATE INDEX held the rows stale.
          await noteWriteFailing(db, WRITE_WAITS, true).then(
            () => {
              this.writeFailingNoted = true;
            },
            (error: unknown) => this.log.warn({ err: errorText(error) }, "could not note the developers write waiting"),
          );
        } else if (writeDue || this.writeFailures === 0) {
          this.writeFailures = 0;
          this.writeRetryAt = Number.NEGATIVE_INFINITY;
          if (writeDue && this.writeFailingNoted) {
            await clearWriteFailing(db);
            this.writeFailingNoted = false;
          }
          this.recovered();
          this.state.syncedThisTerm = step.kind !== "waiting-for-ponder";
        }
      } catch (error) {
        this.inRound = false;
        for (const request of requests) request.reject(error);
        // A reconciliation asked for stays due when its round fails: dropped, it waited for the
        // next periodic one (RECONCILE_INTERVAL_MS), though the answer said to ask again.
        if (requests.length > 0) this.nextReconcileAt = 0;
        const lostNow = lostError();
        if (lostNow) throw lostNow;
        if (developersBusy(error)) {
          // A slice of the step's wait for the developers table ran out (lock-developers.ts): no
          // error, waited again after a poll. Ponder goes on meanwhile, unseen, as below.
          this.noteDevelopersBusy(true);
          this.removalGuard.clear();
          await this.sleep(this.config.syncPollMs);
          continue;
        }
        this.fail(error);
        // A statement's error, with its own developers write in the round trip: the next tries
        // queue (see failedWithOwnWrite).
        if (failedWithOwnWrite(error)) this.queueOnlyUntil = performance.now() + QUEUE_ONLY_MS;
        // Ponder goes on meanwhile, unseen: a missing event noted before must be seen missing
        // again by the next step, not confirmed by a checkpoint whose states it never saw.
        this.removalGuard.clear();
        await this.sleep(...retryAfter(error, this.config.retryDelayMs, this.state.consecutiveErrors));
        continue;
      }
      this.inRound = false;
      this.leaderHeardAt = performance.now();
      // A step that applied events is followed at once: Ponder may have gone on meanwhile (a
      // long catch-up step often ends after Ponder's /ready, with no commit left to wake us).
      // A reconciliation due sooner is run sooner; one overdue (it waits for Ponder's tables,
      // which a round without them cannot reconcile) waits for the next poll like the rest: with
      // no wait, a sidecar started before Ponder ran a step every 1.6 ms until Ponder's tables
      // were there (11 % of a core and a PostgreSQL backend busy, beside Ponder's build).
      const untilReconcile = this.nextReconcileAt - performance.now();
      const backfillEnding = this.unwrittenWait || performance.now() < this.readyWaitUntil;
      const poll = backfillEnding ? Math.min(BACKFILL_END_POLL_MS, this.config.syncPollMs) : this.config.syncPollMs;
      const wait = untilReconcile > 0 ? Math.min(poll, untilReconcile) : poll;
      if (!applied) await this.sleep(wait);
    }
  }

  /** A switch between Ponder instances: worth a line, since the one left is down or behind. */
  private noteSource(schema: string) {
    if (schema === this.state.source) return;
    this.log.warn(
      { from_schema: this.state.source, to_schema: schema },
      "reading Ponder from another instance: the one read is not ready or fell behind",
    );
    this.state.source = schema;
  }

  /**
   * A lock on the developers table held by another session (an application's migration, or one
   * queued behind a long transaction): the sync waits for it, in slices, counting no error. Worth
   * a line when it starts and when it ends; one that lasts shows as lag (StakesyncSyncStalled)
   * when the step waits, and as the write failing (/ready, after WRITE_FAILING_READY_S) when only
   * the developers write does.
   */
  private noteDevelopersBusy(busy: boolean) {
    if (busy === this.developersBusy) return;
    if (busy) {
      this.log.warn(
        { table: this.config.developersTable.sql },
        "waiting for a lock on the developers table held by another session (an application's migration?)",
      );
    } else this.log.info({ table: this.config.developersTable.sql }, "the developers table is free again; syncing");
    this.developersBusy = busy;
  }

  /** Every deploy starts waiting for Ponder's tables: not an error. One that lasts shows as lag. */
  private noteWaitingForPonder(waiting: boolean) {
    if (waiting === this.waitingForPonder) return;
    if (waiting) this.log.warn({ schema: this.state.source }, "waiting for Ponder's tables");
    else this.log.info("Ponder's tables are there; syncing");
    this.waitingForPonder = waiting;
  }

  /** Logs once per chain when removals start waiting for Ponder, and when they stop. */
  private noteDeferred(chainIds: number[]) {
    for (const chainId of chainIds) {
      if (this.deferredChains.has(chainId)) continue;
      this.deferredChains.add(chainId);
      this.log.info(
        { chain_id: chainId },
        "applied events missing from Ponder; waiting for Ponder to be ready and commit a later block before treating them as a reorg",
      );
    }
    for (const chainId of this.deferredChains) if (!chainIds.includes(chainId)) this.deferredChains.delete(chainId);
  }

  private catchUp(now: number): CatchUp {
    if (now < this.nextCatchUpAt) return "no";
    return now - this.steppedAt >= CATCH_UP_WAIT_MS ? "due" : "near-end";
  }

  /** Metrics, logs and hooks of a committed round. Returns whether it applied any event. */
  private recordStep(step: Synced, written: Applied, startedAt: number, durationMs: number, writeMs: number): boolean {
    const { chains, deferred, drifted, catchUp, early } =
      step.kind === "stepped" ? step : { chains: [], deferred: [], drifted: 0, catchUp: false, early: false };
    // Ponder's backfill may use the whole machine, and each catch-up step rewrites every
    // developer it touches: what a skipped one would have done, the next step does.
    if (catchUp) this.nextCatchUpAt = startedAt + durationMs / CATCH_UP_SHARE;
    // An early step left its developers unwritten: they still wait, and CATCH_UP_WAIT_MS counts on.
    if (chains.length > 0 && !early) this.steppedAt = startedAt;
    if (drifted > 0) this.log.warn({ drifted }, "reconcile repaired chain_stake drift");
    this.noteDeferred(deferred);
    this.state.lastSyncAt = new Date().toISOString();
    for (const chain of chains) {
      this.metrics.lastSyncedBlock.set({ chain_id: chain.chainId }, chain.to);
      if (chain.added > 0) this.metrics.eventsSynced.inc({ chain_id: chain.chainId }, chain.added);
      if (chain.added + chain.removed > 0) {
        this.log.info(
          {
            chain_id: chain.chainId,
            from_block: chain.from + 1,
            to_block: chain.to,
            added: chain.added,
            removed: chain.removed,
            duration_ms: Math.round(durationMs),
            // A step costs by the developers it writes more than by its events: the round's
            // developers write (apply-developers.ts), and the rows it changed, on every chain.
            write_ms: Math.round(writeMs),
            developers_changed: written.changes.length,
          },
          "synced",
        );
      }
    }
    for (const refusal of written.refused) {
      this.log.error(
        { developer: refusal.wallet, err: refusal.error },
        "the database refused this developer's row: set aside as a dead letter, the others sync on",
      );
    }
    return chains.some((c) => c.added + c.removed > 0);
  }

  /** Metrics, logs and hooks of developers rows a round changed, once committed. */
  private noteChanges(changes: Change[]) {
    if (changes.length === 0) return;
    const now = Date.now() / 1000;
    for (const change of changes) {
      if (change.block_timestamp) this.metrics.syncLatency.observe(Math.max(0, now - Number(change.block_timestamp)));
      if (change.reason === "reorg") this.metrics.reorgCorrections.inc();
    }
    this.logChanges(changes);
    this.hooks.onChanges?.(changes);
  }

  /**
   * A realtime block's one round trip stopped by the server (a reorg, a busy block) or failed on a
   * statement, and the step ran again the usual way: counted; the first failure of a term logged,
   * as it costs every block a second diff while it lasts.
   */
  private notePlainStop(reason: PlainStop, error: unknown) {
    this.metrics.plainStops.inc({ reason });
    if (reason !== "error" || this.plainErrorLogged) return;
    this.plainErrorLogged = true;
    this.log.info(
      { err: errorText(error) },
      "a realtime block's one round trip failed; the step ran again the usual way (logged once a term)",
    );
  }

  /**
   * A step whose own developers write failed ran again on the queue's path. Whatever failed it
   * (the application changed one of its rows since it began, refused one, or made the write slow)
   * likely fails the next too, at twice the step's cost: steps queue for a while (a realtime
   * block's round then takes a round trip and a commit more, and nothing else changes).
   */
  private noteFellBack(error: unknown, at: number) {
    this.queueOnlyUntil = at + QUEUE_ONLY_MS;
    this.log.info(
      { err: errorText(error), queue_only_s: QUEUE_ONLY_MS / 1000 },
      "a step's own developers write failed; the step ran again and queued them instead",
    );
  }

  private logChanges(changes: Change[]) {
    // Per developer at debug (a backfill changes thousands); corrections always at warn.
    for (const c of changes) {
      const fields = {
        developer: c.wallet,
        // The application's free text may hold an address ("banned by ops@…").
        from: c.old_status === null ? null : redact(c.old_status),
        to: c.new_status,
        amount: c.new_amount,
        reason: c.reason,
      };
      if (c.reason === "reorg") this.log.warn(fields, "developer corrected after a reorg");
      else this.log.debug(fields, "developer updated");
    }
  }

  /**
   * A try to lead that failed: out of reach, or refused (a password rotated, pg_hba.conf, a
   * database gone). It counts at the pace of a failing round's retries (its backoff) though tries
   * come every second. So a PostgreSQL restart of a few seconds is a try or two, and an outage
   * reaches ALERT_AFTER_ERRORS in the time a leader's failing rounds would. No sidecar leads
   * then: each pages it itself (run.ts).
   */
  private unreachable(error: unknown) {
    this.noteOutage();
    const { tries } = this.state.unreachable;
    if (tries > 0 && performance.now() - this.unreachableAt < backoffMs(this.config.retryDelayMs, tries)) return;
    this.unreachableAt = performance.now();
    this.state.unreachable = { tries: tries + 1, error: errorText(error) };
    this.metrics.syncErrors.inc({ kind: classify(error) });
  }

  /**
   * The database lost (`stakesync_database_outages_total`), once until it is reached again: an
   * outage counts one whatever it lasts, where its errors count by the retries' pace (a restart of
   * 30 s was 7 errors across two sidecars, and a rule on errors took one failover for a crash loop).
   */
  private noteOutage() {
    if (this.outageNoted) return;
    this.outageNoted = true;
    this.metrics.databaseOutages.inc();
  }

  /** A try to lead reached the database (and led, or found another sidecar leading). */
  private reached() {
    this.outageNoted = false;
    if (this.state.unreachable.tries > 0) {
      this.log.info({ after_tries: this.state.unreachable.tries }, "the database is reachable again");
    }
    this.state.unreachable = { tries: 0, error: null };
  }

  private fail(error: unknown, kind = classify(error)) {
    if (kind === "database") this.noteOutage();
    const message = errorText(error);
    this.state.consecutiveErrors += 1;
    this.state.lastError = { kind, message, at: new Date().toISOString() };
    this.metrics.syncErrors.inc({ kind });
    const critical = this.state.consecutiveErrors >= this.config.alertAfterErrors;
    this.log[critical ? "error" : "warn"](
      { kind, err: message, consecutive_errors: this.state.consecutiveErrors, critical },
      "sync failed; retrying",
    );
  }

  /**
   * The queue's developers write failed after its step committed: the application's table
   * refuses every write (a trigger that calls what it cannot find, a statement-level refusal).
   * Counted, logged and paged as a failed round is, and backed off; but the step stands, and
   * what it saw stays seen: the stakes, the cursor, a reconciliation's schedule and the sightings
   * of missing events (removalGuard) go on, so that a deep reorg is still corrected and the
   * chain not held at a minute a step while the write waits.
   */
  private writeFailed(error: unknown) {
    // The developers table's, whatever its code says (42P01 is not Ponder's here).
    this.fail(error, "sync");
    this.writeFailures += 1;
    this.writeRetryAt = performance.now() + backoffMs(this.config.retryDelayMs, this.writeFailures);
  }

  private recovered() {
    this.outageNoted = false; // a round got through: the database is there
    if (this.state.consecutiveErrors === 0) return;
    this.log.info({ after_errors: this.state.consecutiveErrors }, "sync recovered");
    this.state.consecutiveErrors = 0;
  }

  /**
   * Waits `ms`, or less when woken; a backoff waits its full time unless the loop stops or the
   * leader's connection is lost (a term's backoff: its error is no reason to go on holding the
   * role, `leaderPid` and the metric of a leader with no lock).
   */
  private sleep(ms: number, { backoff = false } = {}) {
    if (this.woken && !backoff) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      // The wake handler goes with the sleep: a stale one, called during a step, would clear
      // the wake-up meant for the next sleep (a NOTIFY then waited for the next poll).
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = () => {
        if (backoff && !this.stopped && !this.connectionLost) return;
        this.woken = false;
        finish();
      };
    });
  }
}

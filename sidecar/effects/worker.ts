/**
 * The outbox worker, on every sidecar: while its sidecar leads, it skips jobs of developers without
 * an email and sends the rest once; leader or not, it records first the emails it sent whose
 * record failed, and writes nothing to the outbox each tick to know of a break (the take-over).
 * One job at a time, each claimed with its own lease and checked against the fence right before
 * its send: a worker whose sidecar lost leadership (its connection ended, a standby took over)
 * stops at the next job and sends nothing more.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";
import type { Metrics } from "../metrics";
import { errorText } from "../redact";
import type { LoopState } from "../sync/loop";
import { createMailer, type Mailer } from "./mailer";
import {
  claimNextJob,
  type Fence,
  failJob,
  finishJob,
  type Job,
  LAPSES_AT_MOST,
  maySend,
  outboxWritable,
  releaseJob,
  skipWithoutEmail,
  TAKE_OVER_AFTER_MS,
  workCounts,
} from "./outbox";

/** Jobs one tick works through at most; the next tick (a second later) goes on. */
const JOBS_PER_TICK = 10;

/**
 * How long maySend's answer may be acted on: the claim had the longest send and a minute left on
 * its lease when asked; half that minute leaves room for the send to start.
 */
const MAY_SEND_FRESH_MS = 30_000;

/**
 * Ticks further apart than this (they come every second) are a break: the process was frozen or
 * starved, and does not know whether the database was there meanwhile.
 */
const TICK_GAP_MS = 10_000;

/**
 * Whether a failed send is one the SMTP server calls temporary (a 4xx answer: a rate limit,
 * greylisting, a full queue), or one that reached no server (refused, unroutable, no greeting in
 * time): tried again without counting toward RETRY_ATTEMPTS (for a day, outbox.ts). A 5xx answer,
 * a send cut off by its deadline, and a connection lost once made count: nodemailer reports a
 * server that took the message and closed before its answer as it reports one that closed
 * before its greeting ("Connection closed unexpectedly"), and an uncounted retry of that one
 * would deliver a copy every minute for good.
 */
export function temporary(error: unknown): boolean {
  const { responseCode, code, syscall, timeoutType } = (error ?? {}) as Record<string, unknown>;
  if (typeof responseCode === "number") return responseCode >= 400 && responseCode < 500;
  if (code === "EDNS") return true;
  if (code === "ESOCKET") return syscall === "connect" || syscall === "getaddrinfo";
  return (
    code === "ETIMEDOUT" && ["CONNECT_TIMEOUT", "GREETING_TIMEOUT", "UPGRADE_TIMEOUT"].includes(String(timeoutType))
  );
}

export class OutboxWorker {
  private readonly mailer: Mailer | undefined;
  private lastWaitWarning = 0;
  /** Names this process in `locked_by`; the leader pid says which leadership. */
  private readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  /**
   * Emails the SMTP server took whose record failed (the database restarting, unreachable). The
   * claim stays ours until its lease ends, and then another claim would send the email again:
   * each tick records these first, and claims nothing while one is left. A failed send's record
   * too (`failed`): a failure that counts may have been delivered (a connection lost after the
   * server took the message), and its claim, run out, was taken again by this worker, which counts
   * no lapse of its own: uncounted, such a job went out again at each lease while records failed.
   */
  private readonly unrecorded: { job: Job; fence: Fence; failed?: { message: string; temporary: boolean } }[] = [];
  /** Set when the sidecar stops: the job being sent is finished and recorded, no other claimed. */
  private stopping = false;
  /**
   * Since when (`clock`) every tick reached the database and could write the outbox,
   * without a break: a failed statement, or ticks TICK_GAP_MS apart. Unset after a break until a
   * tick gets through. Another worker's claim that ran out is taken over only TAKE_OVER_AFTER_MS
   * into it (outbox.ts).
   */
  private reachableSince: number | undefined;
  private lastTickAt: number | undefined;
  /** Of this tick, the time spent in sends (`clock`): left out of its measure of a break. */
  private sendingMs = 0;
  /** After a temporary failure (`clock`): no send before this. */
  private pausedUntil = Number.NEGATIVE_INFINITY;
  /** While true, nothing is sent (holdSendsUntil); skips are still recorded. */
  private sendsHeld = false;
  private heldForGood = false;
  private heldSaid = false;

  constructor(
    private readonly config: SidecarConfig,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /** How long without a break before this worker takes over another's claim that ran out. */
    private readonly takeOverAfterMs = TAKE_OVER_AFTER_MS,
    /** Milliseconds, monotonic: the worker's measure of breaks (a test passes its own). */
    private readonly clock = () => performance.now(),
  ) {
    this.mailer = config.smtpUrl && config.mailFrom ? createMailer(config.smtpUrl, config.mailFrom) : undefined;
  }

  /**
   * Sends nothing until `may` says true (main.ts: the start's check of the configuration against
   * the chain has answered, and not "wrong"); false keeps every send held. Returns the worker.
   */
  holdSendsUntil(may: Promise<boolean>): this {
    this.sendsHeld = true;
    void may.then((yes) => {
      if (yes && !this.heldForGood) this.sendsHeld = false;
    });
    return this;
  }

  /** Sends nothing more, from now on (a re-check found the configuration wrong: the sidecar stops). */
  holdSends() {
    this.heldForGood = true;
    this.sendsHeld = true;
  }

  /** Records the emails sent and not yet recorded first; then, while this sidecar leads, works. */
  async tick(leader: LoopState) {
    const now = this.clock();
    if (this.lastTickAt === undefined || now - this.lastTickAt > TICK_GAP_MS) this.reachableSince = undefined;
    this.sendingMs = 0;
    this.lastTickAt = now;
    try {
      await this.work(leader, now);
    } catch (error) {
      this.reachableSince = undefined;
      throw error;
    } finally {
      this.lastTickAt = this.clock();
      // A tick that lasted as long is a break too: frozen or starved inside it (after a
      // statement's answer, say), the worker does not know what the database went through
      // meanwhile, and the pool's new connections hide a restart. Its sends left out: a slow relay
      // (20 s an answer) made every tick a break, and no claim that ran out was taken over while
      // welcomes flowed.
      if (this.lastTickAt - now - this.sendingMs > TICK_GAP_MS) this.reachableSince = undefined;
    }
  }

  private async work(leader: LoopState, startedAt: number) {
    const fence = (): Fence | undefined =>
      leader.role === "leader" && leader.leaderPid !== null
        ? { workerId: this.workerId, leaderPid: leader.leaderPid, server: leader.leaderServer ?? null }
        : undefined;
    if (!(await this.record())) {
      this.reachableSince = undefined;
      return;
    }
    const dev = this.config.developersTable.sql;
    // A write to the outbox each tick, leader or not: the standby's is a probe.
    if (fence()) await skipWithoutEmail(this.pool, dev);
    else await outboxWritable(this.pool);
    this.reachableSince ??= startedAt;
    if (!fence()) return;
    if (!this.mailer) return this.warnWaiting();
    if (this.sendsHeld) {
      if (!this.heldSaid) this.log.info("welcome emails wait for the check of the configuration against the chain");
      this.heldSaid = true;
      return;
    }

    // Held meanwhile too (a re-check said the configuration is wrong, holdSends): the batch stops.
    for (let n = 0; n < JOBS_PER_TICK && !this.stopping && !this.sendsHeld; n++) {
      const current = fence();
      if (!current) return; // leadership went: stop here
      if (this.clock() < this.pausedUntil) return; // the server said try later
      const takeOver = this.clock() - this.reachableSince >= this.takeOverAfterMs;
      const job = await claimNextJob(this.pool, dev, current, takeOver);
      if (!job) return;
      const context = { developer: job.wallet, job_id: job.id, attempt: job.attempts };
      if (job.state === "dead") {
        this.log.error(
          { ...context, lapses: LAPSES_AT_MOST },
          "welcome email dead: its claim ran out each time with nothing recorded (a worker killed or frozen mid-send); possibly sent, not tried again",
        );
        continue;
      }
      if (!job.email) {
        await finishJob(this.pool, job, current, "skipped");
        continue;
      }
      // Right before the send: still ours, and still the leader's. A sidecar frozen since the
      // claim, or cut off from the database, is stopped here; and one frozen after the answer
      // (it holds for MAY_SEND_FRESH_MS: the claim has the longest send and a minute left when it
      // is asked, outbox.ts), whose claim may have run out into another's send meanwhile.
      const askedAt = this.clock();
      const may = await maySend(this.pool, job, current);
      const late = may && this.clock() - askedAt > MAY_SEND_FRESH_MS;
      if (!may || late || this.sendsHeld) {
        // Nothing went out: the claim is given back (if still ours) for whoever leads to send at
        // once, rather than after its lease and the take-over wait (17 minutes).
        await releaseJob(this.pool, job, current);
        this.log.warn(
          context,
          late
            ? "outbox claim's answer came too late to send on (the process was frozen?); released, stopping this batch"
            : "outbox claim lost before sending; released, stopping this batch",
        );
        return;
      }
      const failure = await this.timedSend(this.mailer, job.email, job.wallet);
      if (failure) {
        const { error } = failure;
        // The server's reply can quote the address (550 <dave@…>: rejected): redacted.
        const message = errorText(error);
        const later = temporary(error);
        this.metrics.syncErrors.inc({ kind: "email" });
        this.unrecorded.push({ job, fence: current, failed: { message, temporary: later } });
        if (!(await this.record())) {
          this.reachableSince = undefined; // a statement failed: a break (see tick)
          return;
        }
        if (later) {
          // The server is limiting or out of reach: no other job until RETRY_DELAY_MS (each would
          // meet the same answer, at ten a tick), and this one is not counted toward dead.
          this.pausedUntil = this.clock() + this.config.retryDelayMs;
          return;
        }
        continue;
      }
      this.metrics.emailsSent.inc();
      this.unrecorded.push({ job, fence: current });
      if (!(await this.record())) return;
    }
  }

  /** Sends one welcome, its time added to this tick's `sendingMs`; how it failed, if it did. */
  private async timedSend(mailer: Mailer, email: string, wallet: string): Promise<{ error: unknown } | undefined> {
    const startedAt = this.clock();
    try {
      await mailer.send(email, wallet);
      return undefined;
    } catch (error) {
      return { error };
    } finally {
      this.sendingMs += this.clock() - startedAt;
    }
  }

  /**
   * Records the sends, and failed sends, not yet recorded, in order; false while one cannot be
   * (it is kept, and tried again at the next tick, before any claim). Recorded even if leadership
   * went meanwhile: the claim is still ours and the mail is out (or may be).
   */
  private async record(): Promise<boolean> {
    while (this.unrecorded.length > 0) {
      const { job, fence, failed } = this.unrecorded[0] as (typeof this.unrecorded)[0];
      const context = { developer: job.wallet, job_id: job.id, attempt: job.attempts };
      let log: () => void;
      try {
        if (failed) {
          const state = await failJob(this.pool, job, fence, failed.message, {
            attempts: this.config.retryAttempts,
            delayMs: this.config.retryDelayMs,
            temporary: failed.temporary,
          });
          const fields = { ...context, err: failed.message, state };
          log = failed.temporary
            ? () =>
                this.log.warn(
                  fields,
                  "welcome email failed for now (the SMTP server says try later, or is out of reach); tried again, not counted toward RETRY_ATTEMPTS",
                )
            : () => this.log[state === "dead" ? "error" : "warn"](fields, "welcome email failed");
        } else {
          const recorded = await finishJob(this.pool, job, fence, "sent");
          log = recorded
            ? () => this.log.info(context, "welcome email sent")
            : () => this.log.warn(context, "welcome email sent, but the claim was lost meanwhile");
        }
      } catch (error) {
        this.log.warn(
          { ...context, err: errorText(error) },
          failed
            ? "welcome email failed, and its failure not recorded yet: recording it before any other job"
            : "welcome email sent, but not recorded yet: recording it before any other job",
        );
        return false;
      }
      this.unrecorded.shift();
      log();
    }
    return true;
  }

  /** Claims no more jobs: the sidecar stops (the send under way goes on, and is recorded). */
  stop() {
    this.stopping = true;
  }

  /** Records what it can of the emails sent and not yet recorded, then closes the mailer. */
  async close() {
    if (!(await this.record())) {
      this.log.error(
        { jobs: this.unrecorded.map(({ job }) => job.id) },
        "stopping with welcome emails sent (or failed) but not recorded: each is tried again once its claim's lease ends",
      );
    }
    this.mailer?.close();
  }

  private async warnWaiting() {
    if (Date.now() - this.lastWaitWarning < this.config.alertRepeatMs) return;
    const { pending } = (await workCounts(this.pool)).outbox;
    if (pending === 0) return;
    this.lastWaitWarning = Date.now();
    this.log.warn({ pending }, "welcome emails are waiting: set SMTP_URL and MAIL_FROM to send them");
  }
}

/** The leader's outbox worker: skips jobs of developers without an email, sends the rest once. */
import type pg from "pg";
import type { Logger } from "pino";
import type { SidecarConfig } from "../../lib/config";
import type { Metrics } from "../metrics";
import { createMailer, type Mailer } from "./mailer";
import { claimDueJobs, failJob, finishJob, outboxCounts } from "./outbox";

export class OutboxWorker {
  private readonly mailer: Mailer | undefined;
  private lastWaitWarning = 0;

  constructor(
    private readonly config: SidecarConfig,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.mailer = config.smtpUrl && config.mailFrom ? createMailer(config.smtpUrl, config.mailFrom) : undefined;
  }

  async tick() {
    const dev = this.config.developersTable.sql;
    // No address, nothing to send: recorded as skipped, set-based. A job is created skipped when
    // the developer has no email at activation; this catches an email removed since.
    await this.pool.query(
      `UPDATE stakesync.outbox o SET state = 'skipped', done_at = now()
        WHERE o.state = 'pending' AND o.kind = 'welcome_email'
          AND NOT EXISTS (SELECT 1 FROM ${dev} d
                           WHERE lower(d.wallet_address) = o.wallet AND coalesce(d.email, '') <> '')`,
    );
    if (!this.mailer) return this.warnWaiting();

    for (const job of await claimDueJobs(this.pool, dev, 10)) {
      const developer = { developer: job.wallet, job_id: job.id, attempt: job.attempts };
      if (!job.email) {
        await finishJob(this.pool, job.id, "skipped");
        continue;
      }
      try {
        await this.mailer.send(job.email, job.wallet);
        await finishJob(this.pool, job.id, "sent");
        this.metrics.emailsSent.inc();
        this.log.info(developer, "welcome email sent");
      } catch (error) {
        const message = (error as Error).message.split("\n")[0] ?? "send failed";
        const state = await failJob(this.pool, job, message, {
          attempts: this.config.retryAttempts,
          delayMs: this.config.retryDelayMs,
        });
        this.metrics.syncErrors.inc({ kind: "email" });
        this.log[state === "dead" ? "error" : "warn"]({ ...developer, err: message, state }, "welcome email failed");
      }
    }
  }

  close() {
    this.mailer?.close();
  }

  private async warnWaiting() {
    if (Date.now() - this.lastWaitWarning < this.config.alertRepeatMs) return;
    const { pending } = await outboxCounts(this.pool);
    if (pending === 0) return;
    this.lastWaitWarning = Date.now();
    this.log.warn({ pending }, "welcome emails are waiting: set SMTP_URL and MAIL_FROM to send them");
  }
}

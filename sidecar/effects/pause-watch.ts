/**
 * Whether this process was stopped a moment ago (SIGSTOP, a paused VM, an event loop blocked):
 * its timers then fire late, all at once. What it last saw is old meanwhile (its head polls and
 * its watch on Ponder stopped with it), and whether it still leads is not known until its loop
 * has spoken to the database again (a standby may have taken over). The alert rules wait
 * SETTLE_MS after such a pause: evaluated at once, a sidecar back from a 15-s freeze paged
 * `rpc_failing` ("no head": its own polls had stopped) as the leader it no longer was, and no
 * leader ever resolved it (soak seed 18).
 */

/** Later than its interval by this, a timer says the process was stopped: a busy host delays one by a second or two. */
const LATE_MS = 2000;
/** Long enough for the loop to learn whether it still leads (its session's end reaches it at once). */
const SETTLE_MS = 3000;

export class PauseWatch {
  private last: number;
  private resumedAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs = 1000,
    private readonly settleMs = SETTLE_MS,
    now = performance.now(),
  ) {
    this.last = now;
  }

  start() {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    return this;
  }

  stop() {
    clearInterval(this.timer);
  }

  /** The timer's beat; a beat this late marks a pause that ended now. */
  tick(now = performance.now()) {
    if (now - this.last > this.intervalMs + LATE_MS) this.resumedAt = now;
    this.last = now;
  }

  /** Within settleMs of the end of a pause. */
  settling(now = performance.now()) {
    return now - this.resumedAt < this.settleMs;
  }
}

/** The sidecar's view of every chain and of its own work, for /status, /ready, / and metrics. */
import type pg from "pg";
import type { SidecarConfig } from "../lib/config";
import { freshBlock, type Head, stillFor } from "./chain-heads";
import type { Queryable } from "./db/queryable";
import { allRows, inline } from "./db/together";
import { workCounts } from "./effects/outbox";
import { settingsDiffer } from "./settings";
import type { LoopState } from "./sync/loop";
import { readCursors } from "./sync/sql/read-cursors";
import { LOCK_NOT_AVAILABLE, type PonderProgress, readProgress } from "./sync/sql/read-progress";
import { LOCK_WAIT_MS } from "./sync/sql/read-sources";

export type ChainStatus = {
  chainId: number;
  head: number | null;
  indexed: number | null;
  finalized: number | null;
  /** Ponder's /ready: false while it backfills (or catches up after a restart). */
  ponderReady: boolean;
  synced: number;
  lagBlocks: number | null;
  confirmations: number;
  /** Seconds the polled head has stood still past HEAD_STILL_MS (then `head` is null); else 0. */
  stillS: number;
};

export type Status = {
  role: LoopState["role"];
  ready: boolean;
  reason: string | null;
  /** Why Ponder counts as down (INDEXER_DOWN_AFTER_MS and more); null while it is up or starting. */
  indexer: string | null;
  /** The schema of the Ponder instance the sync reads (one of several with PONDER_REPLICA_SCHEMAS). */
  source: string;
  chains: ChainStatus[];
  outbox: { pending: number; dead: number };
  /**
   * `queued`: synced from Ponder, not yet written to developers (normally for a moment; longer
   * while an application transaction holds the row). `refused`: rows the database refused, dead
   * letters of kind developer_sync. `refusedLastHour`: of those, the developers first refused in
   * the last hour; ALERT_AFTER_REFUSED of them page `developers_refused`. `unwritten`: developers
   * whose stake a catch-up step synced while Ponder backfills, written by the step that ends the
   * backfill (unwritten-developers.ts); the sidecar is not ready while any wait. `writeFailingS`:
   * how long the developers write has failed as a whole (write-failing.ts), or null; the sidecar
   * is not ready once it reaches WRITE_FAILING_READY_S.
   */
  developers: {
    queued: number;
    refused: number;
    refusedLastHour: number;
    unwritten: number;
    writeFailingS: number | null;
  };
  /** The kind and time of the last sync error; its text is in the logs, never in an HTTP answer. */
  lastError: { kind: string; at: string } | null;
  consecutiveErrors: number;
  lastSyncAt: string | null;
  /** Where the other live sidecars' settings differ from this one's (settings.ts): one line each. */
  settingsDiffer: string[];
  /**
   * The Ponder schemas whose commits the leader could not make durable (no TRIGGER privilege on
   * their stake_event: durable-ponder.ts); a PostgreSQL crash may lose their last blocks. [] on
   * a standby.
   */
  ponderNotDurable: string[];
  /**
   * When developers were last corrected after a reorg deeper than CONFIRMATIONS (the newest audit
   * row of reason 'reorg'), or null: `reorg_correction` pages for ALERT_REPEAT_MS after it.
   */
  lastReorgCorrectionAt: string | null;
  /** Its age in seconds by the database's clock (the rule's measure: a sidecar's clock may differ). */
  lastReorgCorrectionAgeS: number | null;
};

/**
 * The newest correction after a deep reorg, from the audit (its partial index, migration 022):
 * what every leader and every scrape sees, where a count in one process's memory was lost with
 * the process (a leader that crashed after its correction, a counter that began at 1).
 */
async function lastReorgCorrection(db: Queryable): Promise<{ at: string | null; ageS: number | null }> {
  const { rows } = await db.query<{ at: Date | null; age_s: number | null }>(
    `SELECT max(created_at) AS at, extract(epoch FROM now() - max(created_at))::float8 AS age_s
       FROM stakesync.audit WHERE reason = 'reorg'`,
  );
  return { at: rows[0]?.at?.toISOString() ?? null, ageS: rows[0]?.age_s ?? null };
}

export async function readStatus(
  db: pg.Pool,
  config: SidecarConfig,
  heads: Map<number, Head>,
  indexer: string | null,
  loop: LoopState,
): Promise<Status> {
  // The cursors before the queue, not beside it: each read takes its own connection and snapshot,
  // and a step moves the cursor and queues its developers in one commit, which the developers
  // write empties in the next. Read side by side, a step committed between the two reads showed
  // its cursor with the queue from before it: "synced, nothing queued", nothing written yet
  // (test/sidecar-resilience.test.ts once, on a busy machine). A cursor read first has what its
  // steps queued still queued (or refused) in the later read, or written. The other reads go
  // beside the cursors'. (On one primary: a pool that sends reads to replicas can break this.)
  const others = Promise.all([
    readPonderProgress(db, loop.source),
    settingsDiffer(db, config),
    lastReorgCorrection(db),
  ]);
  others.catch(() => undefined); // handled below; a failed cursor read must not leave it unhandled
  const cursors = await readCursors(db, config);
  const [[progress, differ, reorgAt], work] = await Promise.all([others, workCounts(db)]);
  const now = Date.now();
  const chains = config.chains.map((chain) => {
    const p = progress.get(chain.id);
    // The sidecar polls the head; Ponder may have seen a newer block first. The larger of the two
    // is the head, so the lag shown is never understated. Not polled lately: unknown.
    const polled = freshBlock(heads.get(chain.id), now, chain.headStillMs);
    const head = polled === null ? null : Math.max(polled, p?.indexed ?? polled);
    const synced = cursors.get(chain.id)?.block ?? chain.startBlock - 1;
    return {
      chainId: chain.id,
      head,
      indexed: p?.indexed ?? null,
      finalized: p?.finalized ?? null,
      ponderReady: p?.ready ?? false,
      synced,
      lagBlocks: head === null ? null : Math.max(0, head - synced),
      confirmations: chain.confirmations,
      stillS: Math.round(stillFor(heads.get(chain.id), now, chain.headStillMs) / 1000),
    };
  });
  const behind = chains.find((c) => c.lagBlocks === null || c.lagBlocks > config.maxLagBlocks);
  const { unwritten, writeFailingS } = work.developers;
  const reason = indexer
    ? `indexer down: ${indexer}`
    : behind
      ? behind.lagBlocks === null
        ? behind.stillS > 0
          ? `chain ${behind.chainId}: head unknown (it has not moved for ${behind.stillS} s: HEAD_STILL_MS)`
          : `chain ${behind.chainId}: head unknown (RPC unreachable)`
        : `chain ${behind.chainId}: ${behind.lagBlocks} blocks behind (max ${config.maxLagBlocks})`
      : // Synced stakes, rows not written yet: the cursor says more than the developers table does.
        unwritten > 0
        ? `${unwritten} developers wait for the step that ends Ponder's backfill`
        : // The cursor goes on; the rows it says are written are not (write-failing.ts).
          writeFailingS !== null && writeFailingS >= WRITE_FAILING_READY_S
          ? `the developers write has failed for ${writeFailingS} s (the leader's log says why); synced stakes wait in the queue`
          : null;
  return {
    role: loop.role,
    ready: reason === null,
    reason,
    indexer,
    source: loop.source,
    chains,
    ...work,
    lastError: loop.lastError && { kind: loop.lastError.kind, at: loop.lastError.at },
    consecutiveErrors: loop.consecutiveErrors,
    lastSyncAt: loop.lastSyncAt,
    settingsDiffer: differ,
    ponderNotDurable: loop.ponderNotDurable,
    lastReorgCorrectionAt: reorgAt.at,
    lastReorgCorrectionAgeS: reorgAt.ageS,
  };
}

/**
 * Ponder's progress, or none while Ponder's tables are not there, or locked longer than
 * LOCK_WAIT_MS: a reorg's or crash recovery's transaction holds `_ponder_checkpoint` exclusively
 * until it ends, and a Ponder frozen inside one holds it for as long. Waited for, the read held
 * /status, /ready, /metrics and the alert rules with it (then `indexed` shows unknown, and
 * IndexerWatch tells the lock apart once it lasts).
 */
async function readPonderProgress(db: pg.Pool, schema: string): Promise<Map<number, PonderProgress>> {
  try {
    return (await readProgress(db, schema, { lockWaitMs: LOCK_WAIT_MS })) ?? new Map();
  } catch (error) {
    if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return new Map();
    throw error;
  }
}

/**
 * The developers write failing this long makes /ready 503: longer than a failure the next try
 * mends (a deadlock, a restart), as the backoff goes; held rows and refused rows are no failure.
 */
export const WRITE_FAILING_READY_S = 120;

export type DeveloperView = {
  wallet: string;
  registered: boolean;
  status: string | null;
  stakeAmount: string | null;
  stakedAt: string | null;
  chains: { chainId: number; amount: string; lastBlock: number }[];
  audit: {
    id: string;
    at: string;
    reason: string;
    from: { status: string | null; amount: string | null };
    to: { status: string; amount: string };
    chainId: number | null;
    block: number | null;
    transaction: string | null;
  }[];
  /** More audit rows follow: ask again with `?after=<this>`. */
  nextAfter: string | null;
};

/** The rows of readDeveloper's three reads, as pg gives them. */
type DeveloperRows = [
  { status: string | null; stake_amount: string | null; staked_at: Date | null }[],
  { chain_id: number; amount: string; last_block: string }[],
  {
    id: string;
    created_at: Date;
    reason: string;
    old_status: string | null;
    old_amount: string | null;
    new_status: string;
    new_amount: string;
    chain_id: number | null;
    block_number: string | null;
    transaction_hash: string | null;
  }[],
];

/** One page of the audit trail: a developer changed every block for a year has a long one. */
export type AuditPage = { after: bigint; limit: number };

/**
 * The end of a developer's read, so that its commit waits for the WAL flush where a crash could
 * take back what it read: a step commits without waiting (step.ts, BEGIN_STEP), and a crash of
 * PostgreSQL may take its audit rows back, and with them the audit sequence's advance. An id a
 * client had seen would then come back on another row, and a client paging with `?after=`
 * would skip that row. Every commit the reads saw ended its record before the WAL's insert
 * position read here; when that is not flushed yet, a one-line WAL message (a transaction that
 * writes no WAL commits without the flush, with or without an xid) makes the read's commit flush
 * past it. Mostly it is flushed already (the WAL writer's 200 ms): no xid, no WAL, no flush then.
 * Flushed locally only (`local`, set before the reads): a synchronous standby down must not hold
 * every read, nor a connection of /ready's pool, past any timeout (a COMMIT's wait for a standby
 * is not a statement's, and statement_timeout does not end it). A failover may take back an
 * answer as it may take back a step.
 */
export const DURABLE_READ = `SELECT CASE WHEN pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn()
  THEN pg_logical_emit_message(true, 'stakesync', 'durable read') END`;

/** A developer as the sidecar sees it; never the email. Null when the wallet is unknown. */
export async function readDeveloper(
  db: pg.Pool,
  config: SidecarConfig,
  wallet: string,
  page: AuditPage = { after: 0n, limit: 100 },
): Promise<DeveloperView | null> {
  // One snapshot for the three reads, in one round trip: a simple query of several statements is
  // one transaction, committed at its end and rolled back on an error, its SET LOCALs with it.
  const [row, chains, audit] = (
    await allRows(db, [
      "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
      "SET LOCAL synchronous_commit = local",
      inline(
        `SELECT status, stake_amount::text, staked_at FROM ${config.developersTable.sql} WHERE lower(wallet_address) = $1 LIMIT 1`,
        [wallet],
      ),
      inline(
        "SELECT chain_id, amount::text, last_block FROM stakesync.chain_stake WHERE wallet = $1 ORDER BY chain_id",
        [wallet],
      ),
      inline(
        `SELECT id::text, created_at, reason, old_status, old_amount::text, new_status, new_amount::text, chain_id,
                block_number, transaction_hash
           FROM stakesync.audit WHERE wallet = $1 AND id > $2 ORDER BY id LIMIT $3`,
        [wallet, page.after, page.limit + 1],
      ),
      DURABLE_READ,
    ])
  ).slice(2, 5) as DeveloperRows;
  const dev = row[0];
  if (!dev && chains.length === 0) return null;
  return {
    wallet,
    registered: Boolean(dev),
    status: shownStatus(dev?.status ?? null),
    stakeAmount: dev?.stake_amount ?? null,
    stakedAt: dev?.staked_at ? new Date(dev.staked_at).toISOString() : null,
    chains: chains.map((c) => ({ chainId: c.chain_id, amount: c.amount, lastBlock: Number(c.last_block) })),
    audit: audit.slice(0, page.limit).map((a) => ({
      id: a.id,
      at: new Date(a.created_at).toISOString(),
      reason: a.reason,
      from: { status: shownStatus(a.old_status), amount: a.old_amount },
      to: { status: shownStatus(a.new_status), amount: a.new_amount },
      chainId: a.chain_id,
      block: a.block_number === null ? null : Number(a.block_number),
      transaction: a.transaction_hash,
    })),
    nextAfter: audit.length > page.limit ? (audit[page.limit - 1]?.id ?? null) : null,
  };
}

export type RecentChange = {
  at: string;
  wallet: string;
  oldStatus: string | null;
  newStatus: string;
  oldAmount: string | null;
  newAmount: string;
  reason: string;
  chainId: number | null;
  block: number | null;
  transaction: string | null;
};

export async function readRecentChanges(db: Queryable, limit = 20): Promise<RecentChange[]> {
  const { rows } = await db.query(
    `SELECT created_at, wallet, old_status, new_status, old_amount::text, new_amount::text, reason,
            chain_id, block_number, transaction_hash
       FROM stakesync.audit ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    at: new Date(r.created_at).toISOString(),
    wallet: r.wallet,
    oldStatus: shownStatus(r.old_status),
    newStatus: shownStatus(r.new_status),
    oldAmount: r.old_amount,
    newAmount: r.new_amount,
    reason: r.reason,
    chainId: r.chain_id,
    block: r.block_number === null ? null : Number(r.block_number),
    transaction: r.transaction_hash,
  }));
}

/** The application's own statuses shown by name (the most common first); the rest count as "other". */
const NAMED_STATUSES = 5;
const SIDECAR_STATUSES = new Set(["pending", "active", "inactive"]);
/** A status that is a plain word, shown as it is; any other text is the application's to keep. */
const PLAIN_STATUS = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * A developer's status as the unauthenticated routes show it: the sidecar's own and plain words
 * as they are, free text ("banned by ops@corp.example", the value an adopted table may hold, and
 * the audit keeps as the row's old status once the sync rewrites it) as "other".
 */
export const shownStatus = <T extends string | null>(status: T): T | "other" =>
  status === null || SIDECAR_STATUSES.has(status) || (PLAIN_STATUS.test(status) && status !== "other")
    ? status
    : "other";

/**
 * Rows of the developers table by status. A full count (a sequential scan of a large table), so
 * the HTTP routes keep it for a few seconds rather than count on every refresh. The status
 * column is the application's too: besides the sidecar's three, only its few most common values
 * that are plain words are named. Every value became a metric series and a key of the
 * unauthenticated /status and /metrics, free text included ("suspended: ticket 4711", "banned by
 * ops@corp.example").
 */
export async function countDevelopers(db: Queryable, config: Pick<SidecarConfig, "developersTable">) {
  const { rows } = await db.query<{ status: string | null; n: string }>(
    `SELECT status, count(*) AS n FROM ${config.developersTable.sql} GROUP BY status ORDER BY count(*) DESC, status`,
  );
  // No prototype: a status named "constructor" read Object's as its count, and broke /metrics.
  const counts: Record<string, number> = Object.create(null);
  let named = 0;
  for (const r of rows) {
    const value = r.status ?? "null";
    const plain = PLAIN_STATUS.test(value) && value !== "other";
    const key = SIDECAR_STATUSES.has(value) || (plain && named++ < NAMED_STATUSES) ? value : "other";
    counts[key] = (counts[key] ?? 0) + Number(r.n);
  }
  return counts;
}

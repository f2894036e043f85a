/**
 * `stakesync verify [--json] [--local]`: reads stakeOf() from the chain for every wallet in the
 * developers table and every staker Ponder knows, at each chain's confirmed block (the sidecar's
 * cursor), and compares it with developers and with Ponder's events up to that block; and
 * Ponder's running sums (developer_stake) with its events.
 * Read-only. Exit 0: all match; 1: a mismatch; 2: an error. --local uses .env.local's defaults.
 */
import { parseArgs } from "node:util";
import { createPublicClient, fallback, http } from "viem";
import { StakeVaultAbi } from "../abis/StakeVault";
import { ConfigError, loadSidecarConfig, readLocalDefaults, type SidecarConfig } from "../lib/config";
import { lastRows } from "../sidecar/db/together";
import { classify } from "../sidecar/sync/loop";
import { signedAmount } from "../sidecar/sync/sql/fragments";
import { cursorsFrom, cursorsStatements, neverSynced, neverSyncedText } from "../sidecar/sync/sql/read-cursors";
import { readProgress } from "../sidecar/sync/sql/read-progress";
import { stillWaits } from "../sidecar/sync/sql/unwritten-developers";
import { COMMAND_LOCK_WAIT_MS, commandFailed, commandSnapshot, whyUnread } from "./failure";

const ADDRESS = /^0x[0-9a-f]{40}$/;

export type Mismatch = {
  table: "developers" | "ponder";
  wallet: string;
  chainId: number | "all";
  /** developer_stake: Ponder's running sum against the sum of its own events (expected). */
  field: "stake" | "status" | "wallet_address" | "developer_stake";
  expected: string;
  found: string;
  /** Why, when stakesync knows: the database refused to write the row (a dead letter). */
  note?: string;
};

/**
 * What stakesync knows of a developers row that differs from the chain. One the sidecar has
 * queued is written at its next round (a step writes what it can in its own commit, and what it
 * queued right after: a reconciliation's write may be under way), or once the application transaction that
 * holds the row ends; one the database refused is a dead letter. Still mismatches (the row is
 * not the chain's, and the exit code says so, as documented), each with its note; the queued
 * wallets also listed. In shadow mode the queue is the plan, never written: no note. One an early
 * catch-up step left unwritten while Ponder backfills is written by the step that ends the
 * backfill: noted so, and listed with the queued.
 */
export function noteQueued(
  mismatches: Mismatch[],
  queue: { wallet: string; state: string }[],
  mode: "write" | "shadow",
): { mismatches: Mismatch[]; queued: string[] } {
  const states = new Map(queue.map((q) => [q.wallet, q.state]));
  const queued = new Set<string>();
  const noted = mismatches.map((m) => {
    const state = m.table === "developers" && m.field !== "wallet_address" ? states.get(m.wallet) : undefined;
    if (state === "pending" && mode === "write") {
      queued.add(m.wallet);
      return {
        ...m,
        note: "queued: written at the sidecar's next round, or once an application transaction frees the row",
      };
    }
    if (state === "unwritten" && mode === "write") {
      queued.add(m.wallet);
      return { ...m, note: "synced while Ponder backfills: written by the sidecar's step that ends the backfill" };
    }
    if (state === "dead") return { ...m, note: "refused by the database: a dead letter (/admin/dead-letters)" };
    return m;
  });
  return { mismatches: noted, queued: [...queued].sort() };
}

class VerifyError extends Error {}

export async function verifyCommand(argv: string[]): Promise<number> {
  let json = false;
  try {
    const { values } = parseArgs({ args: argv, options: { json: { type: "boolean" }, local: { type: "boolean" } } });
    json = values.json ?? false;
    const env = values.local ? { ...readLocalDefaults(), ...process.env } : process.env;
    const config = loadSidecarConfig(env);
    const report = await verify(config, (line) => {
      if (!json) process.stderr.write(`${line}\n`);
    });
    if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      for (const m of report.mismatches) {
        process.stdout.write(
          `MISMATCH ${m.table} ${m.wallet} chain ${m.chainId} ${m.field}: expected ${m.expected}, found ${m.found}${m.note ? ` (${m.note})` : ""}\n`,
        );
      }
      const blocks = Object.entries(report.blocks)
        .map(([c, b]) => `${c}@${b}`)
        .join(", ");
      process.stdout.write(
        `${report.mismatches.length === 0 ? "OK" : "FAILED"}: ${report.wallets} wallets on ${Object.keys(report.blocks).length} chain(s) at ${blocks}: ${report.mismatches.length} mismatch(es)${report.queued.length > 0 ? `, ${report.queued.length} queued` : ""}${report.ponderBehind.length > 0 ? `; Ponder's events not compared on chain(s) ${report.ponderBehind.map((c) => c.chainId).join(", ")} (indexed below the cursor)` : ""} in ${report.seconds} s\n`,
      );
    }
    return report.mismatches.length === 0 ? 0 : 1;
  } catch (error) {
    return commandFailed("verify", error, json, error instanceof ConfigError || error instanceof VerifyError);
  }
}

export async function verify(
  config: SidecarConfig,
  progress: (line: string) => void,
  { lockWaitMs = COMMAND_LOCK_WAIT_MS }: { lockWaitMs?: number } = {},
) {
  const started = performance.now();
  // One snapshot: the cursor and the rows it vouches for are read together.
  const db = await commandSnapshot(config, lockWaitMs, (message) => new VerifyError(message));
  try {
    const cursorRows = await lastRows(db, cursorsStatements).catch((error: Error) => {
      throw new VerifyError(
        `cannot read stakesync.cursor${classify(error) === "database" ? "" : " (has the sidecar run?)"}: ${whyUnread(error, lockWaitMs)}`,
      );
    });
    // A chain never synced would be compared at the block before its START_BLOCK: 0 against 0,
    // "OK", while none of its stakes is in developers.
    const unsynced = neverSynced(cursorRows, config);
    if (unsynced.length > 0) throw new VerifyError(neverSyncedText(unsynced));
    const cursors = cursorsFrom(cursorRows, config);
    const schema = config.ponderSchema;
    // Ponder's progress in the same snapshot: a chain whose rows it has not (again) indexed up to
    // the cursor (the crash recovery of every restart deletes the rows above its safe block, and
    // re-indexes them) is missing events the chain has. Compared, each of its stakers was a
    // mismatch, "FAILED" with exit 1, while developers was right: the restore runbook's window.
    const ponderProgress = await readProgress(db, schema, { lockWaitMs }).catch((error: Error) => {
      throw new VerifyError(`cannot read Ponder's tables in schema "${schema}": ${whyUnread(error, lockWaitMs)}`);
    });
    const behind = config.chains
      .map((c) => ({
        chainId: c.id,
        indexed: ponderProgress?.get(c.id)?.indexed ?? -1,
        cursor: cursors.get(c.id)?.block ?? 0,
      }))
      .filter((c) => c.indexed < c.cursor);
    for (const c of behind) {
      progress(
        `chain ${c.chainId}: Ponder has indexed it only to block ${c.indexed}, below the sidecar's ${c.cursor} (re-indexing after a restart?): its events are not compared with the chain; developers is`,
      );
    }
    const developers = await db
      .query<{ wallet: string; status: string; stake_amount: string | null }>(
        `SELECT lower(wallet_address) AS wallet, status, stake_amount::text FROM ${config.developersTable.sql}`,
      )
      .catch((error: Error) => {
        throw new VerifyError(`cannot read ${config.developersTable.sql}: ${whyUnread(error, lockWaitMs)}`);
      });
    const ponder = await db
      .query<{ chain_id: number; wallet: string; amount: string }>(
        `SELECT e.chain_id, e.developer AS wallet,
              sum(${signedAmount("e")})::text AS amount
         FROM "${schema}".stake_event e
         JOIN unnest($1::int[], $2::bigint[]) AS c(chain_id, block) ON c.chain_id = e.chain_id AND e.block_number <= c.block
        GROUP BY e.chain_id, e.developer`,
        [[...cursors.keys()], [...cursors.values()].map((c) => c.block)],
      )
      .catch((error: Error) => {
        throw new VerifyError(`cannot read Ponder's tables in schema "${schema}": ${whyUnread(error, lockWaitMs)}`);
      });
    // Ponder's running sums (developer_stake, which GraphQL serves) against its own events, in
    // the same snapshot (Ponder writes both in one transaction). The events up to the cursor are
    // compared with the chain below, so a running sum that drifted from them (a handler's bug, a
    // row edited by hand) is wrong on the chain too.
    const sums = await db
      .query<{ chain_id: number; wallet: string; events: string | null; stake: string | null }>(
        `SELECT coalesce(s.chain_id, e.chain_id) AS chain_id, coalesce(s.developer, e.developer) AS wallet,
                e.amount::text AS events, s.amount::text AS stake
           FROM (SELECT * FROM "${schema}".developer_stake WHERE chain_id = ANY ($1::int[])) s
           FULL JOIN (SELECT chain_id, developer, sum(${signedAmount("x")}) AS amount
                        FROM "${schema}".stake_event x WHERE chain_id = ANY ($1::int[]) GROUP BY 1, 2) e
             ON e.chain_id = s.chain_id AND e.developer = s.developer
          WHERE s.amount IS DISTINCT FROM e.amount`,
        [config.chains.map((c) => c.id)],
      )
      .catch((error: Error) => {
        throw new VerifyError(`cannot read Ponder's tables in schema "${schema}": ${whyUnread(error, lockWaitMs)}`);
      });
    // What the sidecar has queued, in the same snapshot as the cursor that queued it; and what an
    // early step left unwritten (unwritten-developers.ts), as a state of its own.
    const queue = await db
      .query<{ wallet: string; state: string }>(
        `SELECT wallet, state FROM stakesync.developer_queue q
          WHERE NOT EXISTS (SELECT 1 FROM stakesync.unwritten_developer u WHERE u.wallet = q.wallet AND ${stillWaits("u")})
         UNION ALL
         SELECT wallet, 'unwritten' FROM stakesync.unwritten_developer u WHERE ${stillWaits("u")}`,
      )
      .catch((error: Error) => {
        throw new VerifyError(
          `cannot read stakesync.developer_queue and stakesync.unwritten_developer: ${whyUnread(error, lockWaitMs)}`,
        );
      });
    await db.query("COMMIT").catch((error: Error) => {
      throw new VerifyError(`cannot end the read: ${whyUnread(error, lockWaitMs)}`);
    });
    // Everything is read: the chain's reads below hold no connection that a restart could break.
    await db.end().catch(() => undefined);

    // A wallet_address that is not an address cannot be asked of the chain: it is a mismatch
    // line of its own (the application wrote it), not a reason to stop verifying the others.
    const mismatches: Mismatch[] = sums.rows.map((r) => ({
      table: "ponder",
      wallet: r.wallet,
      chainId: r.chain_id,
      field: "developer_stake",
      expected: r.events ?? "0",
      found: r.stake ?? "no row",
    }));
    const malformed = new Set(developers.rows.filter((r) => !ADDRESS.test(r.wallet)).map((r) => r.wallet));
    for (const wallet of malformed) {
      mismatches.push({
        table: "developers",
        wallet,
        chainId: "all",
        field: "wallet_address",
        expected: "0x followed by 40 hex digits",
        found: JSON.stringify(wallet),
      });
    }
    const wallets = [
      ...new Set([
        ...developers.rows.map((r) => r.wallet).filter((w) => !malformed.has(w)),
        ...ponder.rows.map((r) => r.wallet),
      ]),
    ];
    const onChain = new Map<string, bigint>(); // `${chain}:${wallet}` → stakeOf
    for (const chain of config.chains) {
      const block = BigInt(Math.max(0, cursors.get(chain.id)?.block ?? 0));
      const client = createPublicClient({
        transport: fallback(
          chain.rpcUrls.map((url) => http(url, { batch: { batchSize: 250 }, retryCount: 1, timeout: 10_000 })),
        ),
      });
      let lastReport = performance.now();
      for (let i = 0; i < wallets.length; i += 2000) {
        const slice = wallets.slice(i, i + 2000);
        const amounts = await Promise.all(
          slice.map((wallet) =>
            client.readContract({
              address: chain.stakeVault,
              abi: StakeVaultAbi,
              functionName: "stakeOf",
              args: [wallet as `0x${string}`],
              blockNumber: block,
            }),
          ),
        ).catch((error: Error) => {
          const host = chain.rpcUrls.map((u) => new URL(u).host).join(", ");
          throw new VerifyError(
            `cannot read stakeOf() on chain ${chain.id} (${host}): ${error.message.split("\n")[0]}`,
          );
        });
        for (const [j, wallet] of slice.entries()) onChain.set(`${chain.id}:${wallet}`, amounts[j] ?? 0n);
        if (performance.now() - lastReport > 2000 || i + 2000 >= wallets.length) {
          progress(
            `chain ${chain.id}: read ${Math.min(i + 2000, wallets.length)}/${wallets.length} wallets at block ${block}`,
          );
          lastReport = performance.now();
        }
      }
    }

    const ponderAmount = new Map(ponder.rows.map((r) => [`${r.chain_id}:${r.wallet}`, BigInt(r.amount)]));
    for (const chain of config.chains) {
      if (behind.some((c) => c.chainId === chain.id)) continue;
      for (const wallet of wallets) {
        const expected = onChain.get(`${chain.id}:${wallet}`) ?? 0n;
        const found = ponderAmount.get(`${chain.id}:${wallet}`) ?? 0n;
        if (expected !== found) {
          mismatches.push({
            table: "ponder",
            wallet,
            chainId: chain.id,
            field: "stake",
            expected: `${expected}`,
            found: `${found}`,
          });
        }
      }
    }
    for (const row of developers.rows) {
      if (malformed.has(row.wallet)) continue;
      const raw = config.chains.reduce((sum, c) => sum + (onChain.get(`${c.id}:${row.wallet}`) ?? 0n), 0n);
      const expected = tokenUnits(raw, config.stakeDecimals);
      // NULL: an adopted table's column may allow it; a mismatch, not a crash.
      if (row.stake_amount === null || !sameNumber(expected, row.stake_amount)) {
        mismatches.push({
          table: "developers",
          wallet: row.wallet,
          chainId: "all",
          field: "stake",
          expected,
          found: row.stake_amount ?? "null",
        });
      }
      const active = raw >= config.activationThreshold;
      if (active !== (row.status === "active")) {
        mismatches.push({
          table: "developers",
          wallet: row.wallet,
          chainId: "all",
          field: "status",
          expected: active ? "active" : "pending or inactive",
          found: row.status,
        });
      }
    }
    const judged = noteQueued(mismatches, queue.rows, config.mode);
    return {
      ok: judged.mismatches.length === 0,
      blocks: Object.fromEntries(config.chains.map((c) => [c.id, cursors.get(c.id)?.block ?? null])),
      wallets: wallets.length,
      mismatches: judged.mismatches,
      queued: judged.queued,
      /** Chains whose Ponder events were not compared: Ponder below the sidecar's cursor. */
      ponderBehind: behind,
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}

function tokenUnits(raw: bigint, decimals: number) {
  if (decimals === 0) return raw.toString();
  const s = raw.toString().padStart(decimals + 1, "0");
  return `${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
}

/**
 * Decimal strings equal as numbers (12.5 = 12.500000). Anything else a numeric column can hold
 * (NaN, Infinity) equals nothing; the sign counts (BigInt("-0") dropped it: -0.5 was 0.5).
 */
function sameNumber(a: string, b: string) {
  const norm = (x: string) => {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(x.trim());
    if (!m) return undefined;
    const [, sign = "", i = "0", f = ""] = m;
    const digits = `${BigInt(i)}.${f.replace(/0+$/, "")}`;
    return digits === "0." ? digits : `${sign}${digits}`;
  };
  const [x, y] = [norm(a), norm(b)];
  return x !== undefined && x === y;
}

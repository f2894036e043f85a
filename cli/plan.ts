/**
 * `stakesync plan [--json] [--local]`: what the next sync would change in the developers table,
 * row by row, and who would be welcomed. Read-only. Exit 0: nothing would change; 1: something
 * would; 2: an error. It reads the sidecar's confirmed state, so a sidecar must have synced
 * (SIDECAR_MODE=shadow does that without writing).
 */
import { parseArgs } from "node:util";
import type pg from "pg";
import { ConfigError, loadSidecarConfig, readLocalDefaults, type SidecarConfig } from "../lib/config";
import { type PlannedChange, planDevelopers } from "../sidecar/sync/plan-developers";
import { neverSyncedText } from "../sidecar/sync/sql/read-cursors";
import { COMMAND_LOCK_WAIT_MS, commandFailed, commandSnapshot, whyUnread } from "./failure";

export const PLAN_HELP = `usage: stakesync plan [--json] [--local]

Prints what the next sync would change in the developers table, row by row (wallet, field, now,
would be, why), and which developers would be welcomed, from the confirmed stake a sidecar has
synced (run one with SIDECAR_MODE=shadow first: it writes nothing). Read-only.
Exit 0 nothing would change, 1 something would, 2 an error.

  --json    one JSON object on stdout instead of lines
  --local   take .env.local's defaults (for npm run dev)
  --help    this text
`;

class PlanError extends Error {}

export async function planCommand(argv: string[]): Promise<number> {
  let json = false;
  try {
    const { values } = parseArgs({ args: argv, options: { json: { type: "boolean" }, local: { type: "boolean" } } });
    json = values.json ?? false;
    const config = loadSidecarConfig(values.local ? { ...readLocalDefaults(), ...process.env } : process.env);
    const { blocks, changes } = await plan(config);
    const welcomed = changes.filter((c) => c.welcome === "send").length;
    if (json) process.stdout.write(`${JSON.stringify({ blocks, changes, welcomed })}\n`);
    else print(changes, blocks);
    return changes.length === 0 ? 0 : 1;
  } catch (error) {
    return commandFailed("plan", error, json, error instanceof ConfigError || error instanceof PlanError);
  }
}

/** The plan itself, read in one snapshot: each chain's synced block, and the changes at them. */
export async function plan(
  config: SidecarConfig,
  { lockWaitMs = COMMAND_LOCK_WAIT_MS }: { lockWaitMs?: number } = {},
): Promise<{ blocks: Record<string, number>; changes: PlannedChange[] }> {
  const db = await commandSnapshot(config, lockWaitMs, (message) => new PlanError(message));
  try {
    const blocks = await syncedBlocks(
      db,
      config.chains.map((c) => c.id),
      lockWaitMs,
    );
    const changes = await planDevelopers(db, config).catch((error: Error) => {
      throw new PlanError(`cannot read the tables: ${whyUnread(error, lockWaitMs)}`);
    });
    await db.query("COMMIT").catch((error: Error) => {
      throw new PlanError(`cannot end the read: ${whyUnread(error, lockWaitMs)}`);
    });
    return { blocks, changes };
  } finally {
    await db.end().catch(() => undefined);
  }
}

/**
 * Each chain's confirmed block as the sidecar has synced it; an error if one never synced. No
 * stakesync schema or cursor table is "never synced"; any other failure (a role without access,
 * a lock, a lost connection) is said as it is: read as "never synced", it sent the operator to
 * start a sidecar that was running.
 */
async function syncedBlocks(db: pg.Client, chainIds: number[], lockWaitMs: number): Promise<Record<string, number>> {
  await db.query("SAVEPOINT cursor_read");
  const { rows } = await db
    .query<{ chain_id: number; block: string }>("SELECT chain_id, block FROM stakesync.cursor")
    .catch(async (error: { code?: string }) => {
      if (error.code !== "42P01" && error.code !== "3F000") {
        throw new PlanError(`cannot read stakesync.cursor: ${whyUnread(error, lockWaitMs)}`);
      }
      await db.query("ROLLBACK TO SAVEPOINT cursor_read");
      return { rows: [] as { chain_id: number; block: string }[] };
    });
  const blocks = Object.fromEntries(rows.map((r) => [String(r.chain_id), Number(r.block)]));
  const missing = chainIds.filter((id) => blocks[String(id)] === undefined);
  if (missing.length > 0) throw new PlanError(neverSyncedText(missing));
  return blocks;
}

function print(changes: PlannedChange[], blocks: Record<string, number>) {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const c of changes) {
    if (c.status.now !== c.status.next)
      out(`${c.wallet}  status        ${c.status.now} → ${c.status.next}  (${c.why})`);
    if (c.stakeAmount.now !== c.stakeAmount.next) {
      out(`${c.wallet}  stake_amount  ${c.stakeAmount.now} → ${c.stakeAmount.next}  (${c.why})`);
    }
    if (c.stakedAt) out(`${c.wallet}  staked_at     null → ${c.stakedAt}  (first activation)`);
  }
  const welcomes = changes.filter((c) => c.welcome !== null);
  for (const c of welcomes) {
    out(
      c.welcome === "send"
        ? `${c.wallet}  welcome email would be sent`
        : `${c.wallet}  no welcome email: ${{ no_email: "no email", historic: "activated before EFFECTS_FROM_BLOCK, or by another system (historic)", already_sent: "one was sent before", already_queued: "one is queued already (the outbox sends it)", dead_letter: "an earlier one is a dead letter (GET /admin/dead-letters)", skipped_before: "an earlier one was skipped (GET /admin/jobs/<wallet>)" }[c.welcome as string]}`,
    );
  }
  const at = Object.entries(blocks)
    .map(([chain, block]) => `${chain}@${block}`)
    .join(", ");
  const send = welcomes.filter((c) => c.welcome === "send").length;
  out(
    changes.length === 0
      ? `PLAN: nothing would change at ${at}`
      : `PLAN: ${changes.length} developer row(s) would change at ${at}; ${send} welcome email(s) would be sent, ${welcomes.length - send} skipped`,
  );
}

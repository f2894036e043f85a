/**
 * Each chain's cursor: the block the sidecar has synced to (`block`) and the block up to which its
 * ledger of applied events was folded into chain_stake (`final_block`). A chain never synced
 * starts just before its START_BLOCK. Read by the step (sent with its read of Ponder's progress),
 * the status page and `stakesync verify`.
 * Reads stakesync.cursor.
 */
import type { SidecarConfig } from "../../../lib/config";
import type { Queryable } from "../../db/queryable";
import { lastRows, type Statements } from "../../db/together";

export type Cursor = { block: number; finalBlock: number };

type CursorRow = { chain_id: number; block: string; final_block: string };

export const cursorsStatements: Statements = ["SELECT chain_id, block, final_block FROM stakesync.cursor"];

export async function readCursors(db: Queryable, config: SidecarConfig): Promise<Map<number, Cursor>> {
  return cursorsFrom(await lastRows(db, cursorsStatements), config);
}

/** The configured chains that have no cursor row in the rows of `cursorsStatements`: never synced. */
export function neverSynced(rows: unknown[], config: Pick<SidecarConfig, "chains">): number[] {
  const synced = new Set((rows as CursorRow[]).map((r) => r.chain_id));
  return config.chains.filter((c) => !synced.has(c.id)).map((c) => c.id);
}

/** What a command that compares the tables with the chain says of chains never synced. */
export const neverSyncedText = (chainIds: number[]) =>
  `no sidecar has synced chain ${chainIds.join(", ")} yet: run one (SIDECAR_MODE=shadow writes nothing) until /ready answers 200`;

/** The cursors from the rows of `cursorsStatements`. */
export function cursorsFrom(rows: unknown[], config: SidecarConfig): Map<number, Cursor> {
  const saved = new Map(
    (rows as CursorRow[]).map((r) => [r.chain_id, { block: Number(r.block), finalBlock: Number(r.final_block) }]),
  );
  return new Map(
    config.chains.map((c) => [c.id, saved.get(c.id) ?? { block: c.startBlock - 1, finalBlock: c.startBlock - 1 }]),
  );
}

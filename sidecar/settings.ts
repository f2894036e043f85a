/**
 * The settings that decide what a sidecar writes and sends. Each sidecar announces its own in
 * stakesync.sidecar; whichever leads applies its own to every row, at every change of leader
 * (its first step reconciles): two that disagree (MIN_STAKE, STAKE_DECIMALS, the developers
 * table, the mode, a chain's CONFIRMATIONS or EFFECTS_FROM_BLOCK …, in a rolling deploy or by
 * mistake) rewrite the table back and forth, and one of them may email developers the other
 * would not. Only told, never refused: a deploy that changes a setting has both for a while.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { formatUnits } from "viem";
import type { SidecarConfig } from "../lib/config";
import { missingRelation, type Queryable } from "./db/queryable";
import { messageIdDomain } from "./effects/mailer";

/** This process, as other sidecars name it. */
export const INSTANCE = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

/** This sidecar as its operator names it: its host and HTTP port, the same across its restarts. */
export const sidecarName = (config: Pick<SidecarConfig, "port">) => `${hostname()}:${config.port}`;

/** A sidecar not seen for this long is gone (killed, or frozen: it leads nothing meanwhile). */
const LIVE_SECONDS = 30;

/**
 * By the names of their variables, as the differences are told; each as it takes effect, so that
 * two ways of writing one value agree: CHAINS in order of id, MIN_STAKE as the threshold it makes
 * (10.0 and 10 alike; 0 is one raw unit). EFFECTS_FROM_BLOCK 0 is not unset: set, it makes a
 * cut-over's rule for rows another system activated (write-developers.ts). Not the Ponder schema
 * read: instances of the same chains (PONDER_REPLICA_SCHEMAS) may be listed in another order.
 */
export function writtenSettings(config: SidecarConfig): Record<string, string> {
  const chains = [...config.chains].sort((a, b) => a.id - b.id);
  const settings: Record<string, string> = {
    CHAINS: chains.map((c) => c.id).join(","),
    STAKE_DECIMALS: String(config.stakeDecimals),
    MIN_STAKE: formatUnits(config.activationThreshold, config.stakeDecimals),
    DEVELOPERS_TABLE: `${config.developersTable.schema}.${config.developersTable.table}`,
    SIDECAR_MODE: config.mode,
    // Its domain, which the welcome's Message-ID takes: a resend by a sidecar of another domain
    // is no duplicate to the receiving server.
    MAIL_FROM: config.mailFrom === undefined ? "unset" : messageIdDomain(config.mailFrom),
  };
  for (const c of chains) {
    settings[`STAKE_VAULT_ADDRESS_${c.id}`] = c.stakeVault.toLowerCase();
    settings[`CONFIRMATIONS_${c.id}`] = String(c.confirmations);
    settings[`EFFECTS_FROM_BLOCK_${c.id}`] = c.effectsFromBlock === undefined ? "unset" : String(c.effectsFromBlock);
  }
  return settings;
}

/** Refreshes this sidecar's entry, and forgets those not seen for an hour. */
export async function announceSettings(db: Queryable, config: SidecarConfig, instance = INSTANCE): Promise<void> {
  await db.query(
    `WITH gone AS (DELETE FROM stakesync.sidecar WHERE seen_at < now() - interval '1 hour')
     INSERT INTO stakesync.sidecar (instance, settings) VALUES ($1, $2)
     ON CONFLICT (instance) DO UPDATE SET settings = excluded.settings, seen_at = now()`,
    [instance, JSON.stringify(writtenSettings(config))],
  );
}

/** At a graceful stop: not counted for LIVE_SECONDS more. */
export async function withdrawSettings(db: Queryable, instance = INSTANCE): Promise<void> {
  await db.query("DELETE FROM stakesync.sidecar WHERE instance = $1", [instance]);
}

/**
 * How the live sidecars' settings differ from this one's: one line per setting, naming each
 * value and who has it. Empty when they agree, and while the table is not there yet (a sidecar
 * of the version before it, or this one's migration still waiting for its lock): /status and
 * /ready answer as before it.
 */
export async function settingsDiffer(db: Queryable, config: SidecarConfig, instance = INSTANCE): Promise<string[]> {
  const { rows } = await db
    .query<{ instance: string; settings: Record<string, string> }>(
      `SELECT instance, settings FROM stakesync.sidecar
        WHERE instance <> $1 AND seen_at > now() - make_interval(secs => $2) ORDER BY instance`,
      [instance, LIVE_SECONDS],
    )
    .catch((error: unknown) => {
      if (missingRelation(error)) return { rows: [] };
      throw error;
    });
  const mine = writtenSettings(config);
  const lines: string[] = [];
  for (const name of new Set([...Object.keys(mine), ...rows.flatMap((r) => Object.keys(r.settings))])) {
    const others = rows.filter((r) => r.settings[name] !== mine[name]);
    if (others.length === 0) continue;
    const theirs = others.map((r) => `${r.settings[name] ?? "unset"} on ${r.instance}`).join(", ");
    lines.push(`${name}: ${mine[name] ?? "unset"} here, ${theirs}`);
  }
  return lines;
}

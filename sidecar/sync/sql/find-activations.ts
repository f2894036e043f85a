import type pg from "pg";
import { type Computed, computed, inline } from "../../db/together";
import type { Confirmed } from "../windows";
import { eventKey, signedAmount } from "./fragments";

/**
 * Fills the temp table `activation`: for each developer activated for the first time, the block
 * time of the event that first took their confirmed stake, summed over chains, to the threshold.
 * Ponder's event id sorts events in the order they happened (block time, chain, block, position),
 * and a developer's first event is nearly always a stake that reaches the threshold on its own:
 * one pass finds it. Only the others are replayed event by event. The wallets are passed as a
 * list, not joined: while Ponder backfills its tables have no indexes and no statistics, and a
 * join there can make the planner scan every event once per developer.
 */
export async function findActivations(
  db: pg.ClientBase,
  ponderSchema: string,
  threshold: string,
  confirmed: Map<number, Confirmed>,
  wallets: string[],
) {
  const { first, replay } = activationQueries(ponderSchema);
  const { rows } = await db.query<{ wallet: string; found: boolean }>(
    first,
    activationValues(confirmed, wallets, threshold),
  );
  const replayed = rows.filter((r) => !r.found).map((r) => r.wallet);
  if (replayed.length > 0) await db.query(replay, activationValues(confirmed, replayed, threshold));
  if (confirmed.size > 1) await db.query(distrust(ponderSchema, confirmed));
}

/**
 * The same two statements for a step whose look-ups go in one round trip (queue-developers.ts):
 * the wallets are computed by the server, the first pass's from `stale` (its activating
 * developers), the replay's from what the first pass did not find. Only once Ponder is ready:
 * its indexes are there.
 */
export function findActivationsTogether(ponderSchema: string, threshold: string, confirmed: Map<number, Confirmed>) {
  const { first, replay } = activationQueries(ponderSchema);
  return [
    inline(first, activationValues(confirmed, computed("ARRAY(SELECT wallet FROM stale WHERE activating)"), threshold)),
    inline(
      replay,
      activationValues(confirmed, computed("ARRAY(SELECT wallet FROM activation WHERE NOT found)"), threshold),
    ),
    ...(confirmed.size > 1 ? [distrust(ponderSchema, confirmed)] : []),
  ];
}

/**
 * A crossing found is kept only if Ponder shows every event of the developer that came before it:
 * else the developer waits, as for a crossing not found, until Ponder shows them again. On one
 * chain the events Ponder lost are its last ones (a crash recovery deletes its rows above a
 * block, a reorg's first half its rows from one), after any crossing found among those it still
 * shows, so this is asked only of several chains: there, one chain's events gone can precede
 * another chain's later stake that reached the threshold alone, which was taken for the first
 * (staked_at, and the welcome decided by EFFECTS_FROM_BLOCK, from the wrong chain). Two ways to
 * tell that Ponder lacks some:
 * - an applied event of the developer's (the ledger keeps those above the finalized block) that
 *   Ponder no longer shows, before the crossing: the comparison is the event id's order (block
 *   time, chain, block) at the block, as a chain's events go a block at a time;
 * - on some chain, the stake folded into chain_stake is not what Ponder's events in the search's
 *   scope sum to: Ponder lost events the ledger no longer holds, at or below the finalized block
 *   (a multichain crash recovery deletes rows above a chain's safe block, which may lie below its
 *   finalized one; a Ponder indexing afresh, a `ponder dev` restart or a new schema behind the
 *   cursor). In any step without such a loss the two are equal: chain_stake is the sum of the
 *   events the steps applied, which are the scope's.
 * Only the developers this step searched (not activations an early step found and checked), and
 * the chains configured: a chain taken out of CHAINS keeps its last ledger rows and stakes, which
 * no Ponder will show again.
 */
const distrust = (ponderSchema: string, confirmed: Map<number, Confirmed>) => {
  const chains = [...confirmed.keys()].join(", ");
  const scope = [...confirmed].map(([id, c]) => `(${id}, ${c.block}, ${c.applied})`).join(", ");
  return `UPDATE activation x SET found = false
    FROM (SELECT DISTINCT b.wallet
            -- OFFSET 0: the look-up below only for these developers' events before their crossing.
            FROM (SELECT a.wallet, a.event_key FROM stakesync.applied_event a
                    JOIN activation y ON y.wallet = a.wallet AND y.found
                    JOIN stale s ON s.wallet = y.wallet AND s.activating
                   WHERE a.chain_id IN (${chains})
                     AND (substring(a.event_key from 1 for 10)::bigint, a.chain_id, a.block_number)
                         < (y.block_timestamp, y.chain_id, y.block_number)
                  OFFSET 0) b
           -- By Ponder's primary key, one event at a time: as an anti join (nested loops are off in
           -- the step) it hashed every one of Ponder's events.
           WHERE (SELECT count(*) FROM "${ponderSchema}".stake_event e
                   WHERE e.id = split_part(b.event_key, ':', 1)
                     AND e.transaction_hash = split_part(b.event_key, ':', 2)) = 0
          UNION
          -- From the step's few developers, each (wallet, chain) by chain_stake's key: joined to
          -- the step's temp tables (no statistics) with nested loops off, chain_stake was read whole.
          -- No stake folded on a chain (NULL): nothing to compare.
          SELECT y.wallet FROM activation y
            JOIN stale s ON s.wallet = y.wallet AND s.activating
           CROSS JOIN (VALUES ${scope}) AS c(chain_id, block, applied)
           WHERE y.found
             AND (SELECT cs.amount FROM stakesync.chain_stake cs WHERE cs.wallet = y.wallet AND cs.chain_id = c.chain_id)
                 -- Per developer and chain, through Ponder's index on (chain_id, developer, block_number).
                 <> (SELECT coalesce(sum(${signedAmount("e")}), 0) FROM "${ponderSchema}".stake_event e
                      WHERE e.chain_id = c.chain_id AND e.developer = y.wallet
                        AND (e.block_number <= c.block
                             OR (e.block_number <= c.applied
                                 AND EXISTS (SELECT 1 FROM stakesync.applied_event a
                                              WHERE a.chain_id = e.chain_id AND a.event_key = ${eventKey("e")}))))) gone
   WHERE x.wallet = gone.wallet AND x.found`;
};

/** $1–$2 and $5 the chains' confirmed scope, $3 the wallets, $4 the threshold. */
function activationValues(confirmed: Map<number, Confirmed>, wallets: string[] | Computed, threshold: string) {
  const chains = [...confirmed.entries()];
  return [
    chains.map(([id]) => id),
    chains.map(([, c]) => c.block),
    wallets,
    threshold,
    chains.map(([, c]) => c.applied),
  ];
}

/**
 * The chains stand in the WHERE as well as in the join: Ponder's index on stake_event leads with
 * chain_id, and the chain of a join (a hash join: nested loops are off in the step) does not
 * reach it; without them every first activation read all of Ponder's events (44 ms at 200,000).
 */
function activationQueries(ponderSchema: string) {
  const events = `SELECT e.* FROM "${ponderSchema}".stake_event e
                    JOIN unnest($1::int[], $2::bigint[], $5::bigint[]) AS c(chain_id, block, applied)
                      ON c.chain_id = e.chain_id
                     AND (e.block_number <= c.block
                          OR (e.block_number <= c.applied
                              AND EXISTS (SELECT 1 FROM stakesync.applied_event a
                                           WHERE a.chain_id = e.chain_id AND a.event_key = ${eventKey("e")})))
                   WHERE e.chain_id = ANY($1::int[]) AND e.developer = ANY($3::text[])
                     AND cardinality($3::text[]) > 0`;
  // A developer's first event in chain order: its block and whether it reached the threshold alone.
  const first = `INSERT INTO activation (wallet, block_timestamp, chain_id, block_number, found)
     SELECT DISTINCT ON (e.developer) e.developer, e.block_timestamp, e.chain_id, e.block_number,
            e.kind = 'staked' AND e.amount >= $4::numeric
       FROM (${events}) e
      ORDER BY e.developer, e.id COLLATE "C"
     RETURNING wallet, found`;
  const replay = `UPDATE activation a
        SET block_timestamp = x.block_timestamp, chain_id = x.chain_id, block_number = x.block_number, found = true
       FROM (SELECT DISTINCT ON (wallet) wallet, block_timestamp, chain_id, block_number
               FROM (SELECT e.developer AS wallet, e.id, e.block_timestamp, e.chain_id, e.block_number,
                            sum(${signedAmount("e")})
                              OVER (PARTITION BY e.developer ORDER BY e.id COLLATE "C") AS running
                       FROM (${events}) e) s
              WHERE running >= $4::numeric
              ORDER BY wallet, id COLLATE "C") x
      WHERE a.wallet = x.wallet`;
  return { first, replay };
}

// The floor of the cached and cold goals (`npm run bench -- --only a,floor`): the least a sidecar
// started beside Ponder can do, measured instead of estimated (docs/performance.md, "What any
// design pays after the backfill"). A Node process that starts with Ponder, does nothing while
// Ponder backfills, and once Ponder's checkpoint reaches the chain's last event (before /ready)
// writes every developer in one statement from
// Ponder's own running sums (`developer_stake`), with an audit row and a welcome job each, as the
// sidecar's last write does. It keeps no ledger, cannot tell a reorg from a crash recovery, and
// reads Ponder's state at its checkpoint, not at a confirmed block: not a design, a lower bound.
// Plain JavaScript: a compile step at its start would make the floor higher than it is.
import pg from "pg";

const { DATABASE_URL, DATABASE_SCHEMA, FLOOR_HEAD, FLOOR_THRESHOLD, FLOOR_FACTOR } = process.env;
const db = new pg.Client({ connectionString: DATABASE_URL });
await db.connect();
// The earliest moment any design can write: Ponder's batch with the chain's last event has
// committed (its checkpoint's block, characters 27–42, is the head), before /ready, whose index
// builds come after it.
const indexedToHead = async () => {
  const { rows } = await db
    .query(
      `SELECT substring(latest_checkpoint from 27 for 16)::bigint >= $1 AS done FROM "${DATABASE_SCHEMA}"._ponder_checkpoint`,
      [FLOOR_HEAD],
    )
    .catch(() => ({ rows: [] })); // not created yet
  return rows[0]?.done === true;
};
while (!(await indexedToHead())) await new Promise((resolve) => setTimeout(resolve, 20));
await db.query(
  `WITH next AS (
     SELECT d.ctid AS row_id, d.status, d.stake_amount, s.amount * $1::numeric AS new_amount,
            CASE WHEN s.amount >= $2::numeric THEN 'active' WHEN d.status = 'pending' THEN 'pending' ELSE 'inactive' END
              AS new_status,
            s.developer AS wallet, s.first_staked_at
       FROM developers d JOIN "${DATABASE_SCHEMA}".developer_stake s ON s.developer = lower(d.wallet_address)
   ),
   changed AS (
     UPDATE developers d
        SET status = n.new_status, stake_amount = n.new_amount, updated_at = statement_timestamp(),
            staked_at = COALESCE(d.staked_at, CASE WHEN n.new_status = 'active' THEN to_timestamp(n.first_staked_at) END)
       FROM next n
      WHERE d.ctid = n.row_id AND (n.status IS DISTINCT FROM n.new_status OR n.stake_amount IS DISTINCT FROM n.new_amount)
     RETURNING n.wallet, n.status AS old_status, d.status AS new_status, n.stake_amount AS old_amount,
               d.stake_amount AS new_amount
   ),
   welcome AS (
     INSERT INTO floor.outbox (kind, wallet)
     SELECT 'welcome_email', wallet FROM changed WHERE new_status = 'active' ON CONFLICT DO NOTHING
   ),
   audited AS (
     INSERT INTO floor.audit (wallet, old_status, new_status, old_amount, new_amount, reason)
     SELECT wallet, old_status, new_status, old_amount, new_amount, 'stake' FROM changed
   )
   INSERT INTO floor.done VALUES (now())`,
  [FLOOR_FACTOR, FLOOR_THRESHOLD],
);
await db.end();
// A sidecar stays up: so does this, until the bench stops it (an exit would read as a crash).
setInterval(() => {}, 2 ** 30);

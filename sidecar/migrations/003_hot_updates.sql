-- Every sync step rewrites the stake of each wallet it touches, tens of thousands in a catch-up.
-- Room on each page lets PostgreSQL update a row in place of its index entry (a HOT update).
ALTER TABLE stakesync.chain_stake SET (fillfactor = 50);

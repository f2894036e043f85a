-- When the database last refused a developers row (apply-developers.ts sets it). The alert
-- `developers_refused` counts the developers refused since stakesync last wrote a row (the
-- newest stakesync.audit row): many of them and none written means a rule that refuses every
-- row. NULL for entries refused before this column: not counted.
ALTER TABLE stakesync.developer_queue ADD COLUMN refused_at timestamptz;

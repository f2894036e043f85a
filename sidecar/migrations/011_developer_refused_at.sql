-- When the database first refused this developers row (apply-developers.ts sets it; a retry
-- refused again keeps it). The alert `developers_refused` counts the developers first refused in
-- the last hour and not written since: many of them mean a rule that refuses every row, not one
-- for a few developers. NULL for entries refused before this column: not counted.
ALTER TABLE stakesync.developer_queue ADD COLUMN refused_at timestamptz;

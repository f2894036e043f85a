-- Every running sidecar's settings that decide what it writes and sends (sidecar/settings.ts),
-- refreshed every few seconds. Sidecars that disagree apply their own settings to every row
-- each time the lead passes between them: /status names the differences, and the leader pages
-- (settings_differ) when they last.
CREATE TABLE stakesync.sidecar (
  instance text PRIMARY KEY,
  settings jsonb NOT NULL,
  seen_at timestamptz NOT NULL DEFAULT now()
);

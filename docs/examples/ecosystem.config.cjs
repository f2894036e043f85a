// PM2: `pm2 start docs/examples/ecosystem.config.cjs`. Secrets come from the environment PM2 runs in.
module.exports = {
  apps: [
    {
      name: "stakesync-indexer",
      // node itself, not npm: a signal to npm would orphan the processes it started.
      script: "scripts/start.ts",
      args: "indexer",
      interpreter: "node",
      interpreter_args: "--import tsx",
      env: { DATABASE_SCHEMA: "stakevault_v2", PONDER_VIEWS_SCHEMA: "stakevault" },
      autorestart: true,
      max_memory_restart: "3G",
      kill_timeout: 30000,
    },
    {
      name: "stakesync-sidecar",
      script: "scripts/start.ts",
      args: "sidecar",
      interpreter: "node",
      interpreter_args: "--import tsx",
      env: { PONDER_VIEWS_SCHEMA: "stakevault" },
      autorestart: true,
      max_memory_restart: "512M",
      // A stop waits for a welcome email under way (up to 5 minutes with a slow SMTP server and
      // its record; see stakesync-sidecar.service).
      kill_timeout: 330000,
    },
  ],
};

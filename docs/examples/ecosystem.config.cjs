// PM2: `pm2 start docs/examples/ecosystem.config.cjs`. Secrets come from the environment PM2 runs in.
module.exports = {
  apps: [
    {
      name: "stakesync-indexer",
      script: "npm",
      args: "run start:indexer",
      env: { DATABASE_SCHEMA: "stakevault_v2", PONDER_VIEWS_SCHEMA: "stakevault" },
      autorestart: true,
      max_memory_restart: "3G",
      kill_timeout: 30000,
    },
    {
      name: "stakesync-sidecar",
      script: "npm",
      args: "run start:sidecar",
      env: { PONDER_VIEWS_SCHEMA: "stakevault" },
      autorestart: true,
      max_memory_restart: "512M",
      kill_timeout: 30000,
    },
  ],
};

/**
 * `stakesync <command>`: the operator's command line (cli/commands.ts). The Node.js check first,
 * alone: see scripts/start.ts.
 */
import "../lib/require-node.mjs";

await import("./commands");

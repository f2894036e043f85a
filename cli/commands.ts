/** `stakesync <command>`: the operator's command line, once cli/main.ts has checked Node.js. */
import { DEMO_HELP, demoCommand } from "./demo";
import { PLAN_HELP, planCommand } from "./plan";
import { verifyCommand } from "./verify";

const USAGE = `usage: stakesync <command> [options]

commands:
  verify [--json] [--local]   compare developers and Ponder's tables with stakeOf() on chain at the
                              confirmed block; exit 0 all match, 1 a mismatch, 2 an error
  plan [--json] [--local]     what the next sync would change in developers, row by row, and who
                              would be welcomed; exit 0 nothing, 1 something, 2 an error
  demo <action> <who> [amount]
                              stake, unstake, slash or register on npm run dev's local stack

options:
  --help                      this text (also: stakesync <command> --help)
`;

const VERIFY_HELP = `usage: stakesync verify [--json] [--local]

Reads stakeOf() for every wallet in the developers table and every staker Ponder knows, at each
chain's confirmed block (the sidecar's cursor), and compares it with developers and with Ponder's
events up to that block. Read-only. Prints each mismatch; exit 0 all match, 1 a mismatch, 2 an error.
It reads the sidecar's configuration from the environment (DATABASE_URL with a role that can read
Ponder's schema, stakesync and the developers table: the sidecar's).

  --json    one JSON object on stdout instead of lines
  --local   take .env.local's defaults (for npm run dev)
  --help    this text
`;

const [command, ...rest] = process.argv.slice(2);
if (command === undefined || command === "--help" || command === "-h" || command === "help") {
  process.stdout.write(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
if (command === "verify") {
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(VERIFY_HELP);
    process.exit(0);
  }
  process.exit(await verifyCommand(rest));
}
if (command === "plan") {
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(PLAN_HELP);
    process.exit(0);
  }
  process.exit(await planCommand(rest));
}
if (command === "demo") {
  if (rest.length === 0 || rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(DEMO_HELP);
    process.exit(rest.length === 0 ? 2 : 0);
  }
  process.exit(await demoCommand(rest));
}
process.stderr.write(`stakesync: unknown command "${command}"\n${USAGE}`);
process.exit(2);

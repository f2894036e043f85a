/** `stakesync <command>`: the operator's command line. */
// First: refuses an unsupported Node.js with one line, before anything else loads.
import "../lib/require-node";
import { verifyCommand } from "./verify";

const [command, ...rest] = process.argv.slice(2);
if (command === "verify") {
  process.exit(await verifyCommand(rest));
}
process.stderr.write("usage: stakesync verify [--json] [--local]\n");
process.exit(2);

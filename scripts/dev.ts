/**
 * `npm run dev`: the whole local stack (scripts/dev-stack.ts) in a process group of its own,
 * stopped in order on Ctrl-C.
 *
 * A terminal's Ctrl-C signals its whole foreground process group at once: PostgreSQL and anvil
 * died before Ponder and the sidecar, which then failed with pages of stack traces and never
 * released Ponder's lock. In a group of its own the stack hears only what this launcher forwards
 * (SIGTERM), and stops its children one by one. A second Ctrl-C (a second apart, since npm and
 * tsx relay the first one again) is patient; a third stops everything at once.
 */
// First: refuses an unsupported Node.js with one line. The repository's own modules come after
// it (see scripts/start.ts); Node's own load everywhere.
import "../lib/require-node.mjs";
import { spawn } from "node:child_process";
import path from "node:path";

const { repoRoot } = await import("../lib/config");

const stack = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts", "dev-stack.ts")], {
  cwd: repoRoot,
  detached: true,
  stdio: "inherit",
});

let asked = 0;
let lastAskedAt = 0;
function stop() {
  if (Date.now() - lastAskedAt < 1000) return; // the same Ctrl-C, relayed by npm or tsx
  lastAskedAt = Date.now();
  asked += 1;
  if (asked === 1) stack.kill("SIGTERM");
  else if (asked === 2) process.stdout.write("[dev] still stopping (Ponder releases its lock); Ctrl-C again to kill\n");
  else if (stack.pid) process.kill(-stack.pid, "SIGKILL");
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, stop);
// Its terminal gone (EIO on write), the launcher has nothing to say; the stack stops on SIGHUP.
process.stdout.on("error", () => undefined);
stack.once("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

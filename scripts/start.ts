/**
 * `npm start` (production): `ponder start` and the sidecar, configured only by the real
 * environment. `npm run start:indexer` / `start:sidecar` run one of them.
 *
 * Ponder's CLI loads .env.local itself, so the children get every key of it that the
 * environment lacks as "" (unset): a production process can never run on a local default.
 */
// First: refuses an unsupported Node.js with one line, before anything else loads.
import "../lib/require-node";
import { type ChildProcess, spawn } from "node:child_process";
import {
  exitOnConfigError,
  loadIndexerConfig,
  loadSidecarConfig,
  localPonderUrl,
  orExit,
  repoRoot,
  requiredInProduction,
  withoutLocalDefaults,
} from "../lib/config";
import { ponderAnswering, ponderStartCommand, sidecarCommand } from "../lib/local/process";

const role = process.argv[2] ?? "all";
if (!["all", "indexer", "sidecar"].includes(role)) {
  process.stderr.write(`stakesync: unknown role "${role}" (expected indexer or sidecar)\n`);
  process.exit(1);
}

const missing = requiredInProduction(process.env, role as "all" | "indexer" | "sidecar").filter(
  (name) => !process.env[name]?.trim(),
);
if (missing.length > 0) {
  exitOnConfigError(
    `${missing.join(", ")} must be set in the environment for production (.env.local is only for npm run dev)`,
  );
}
const config = role === "sidecar" ? undefined : orExit(() => loadIndexerConfig(process.env));
if (role !== "indexer") orExit(() => loadSidecarConfig(process.env));
const env = withoutLocalDefaults({ PONDER_TELEMETRY_DISABLED: "true", ...process.env });

const children: ChildProcess[] = [];
/** A SIGINT or SIGTERM reached us: the children's ends are a stop, not a failure. */
let stopRequested = false;
function launch(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...env, ...extraEnv }, stdio: "inherit" });
  children.push(child);
  // One part down means the deployment is down: stop the rest and let the supervisor restart us.
  // The first to exit gives the exit code: the others, stopped by us, exit 0 after it, and a
  // supervisor that restarts on failure only (Restart=on-failure) saw a clean stop.
  child.once("exit", (code, signal) => {
    for (const other of children)
      if (other !== child && other.exitCode === null) other.kill(other === ponderChild ? "SIGINT" : "SIGTERM");
    // Killed by the signal we were stopped with (the sidecar before its handlers are set): a stop.
    process.exitCode ??= code ?? (signal && !stopRequested ? 1 : 0);
  });
  return child;
}

// Built before Ponder starts, so that the build does not compete with Ponder's.
const sidecar = role === "indexer" ? undefined : await sidecarCommand();
// From here a signal stops the children, also while the sidecar waits for Ponder to answer.
// Ponder gets SIGINT for either (and when the sidecar exits, above). On SIGTERM the build tool it
// embeds (Vite) used to exit the process before Ponder released its schema lock, and the next
// start waited 25 s for the lock to expire; vite.config.ts now keeps Vite from handling SIGTERM
// (test/ponder-internals/sigterm-unlock), and SIGINT, which Vite never handled, stays the sure way.
let ponderChild: ChildProcess | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopRequested = true;
    for (const child of children) child.kill(child === ponderChild ? "SIGINT" : signal);
  });
}

if (config) {
  const extra = [
    ...(config.viewsSchema ? ["--views-schema", config.viewsSchema] : []),
    ...(config.host ? ["--hostname", config.host] : []),
  ];
  const ponder = ponderStartCommand(config.memory, config.database.schema, config.port, extra);
  ponderChild = launch(ponder.args, ponder.env);
  if (sidecar && (await ponderAnswering(localPonderUrl(config.host, config.port), ponderChild))) launch(sidecar);
} else if (sidecar) {
  launch(sidecar);
}

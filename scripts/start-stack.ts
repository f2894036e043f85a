/**
 * What `npm start` runs once scripts/start.ts has checked Node.js: `ponder start` and the sidecar
 * (or the role given: `indexer`, `sidecar`, or `serve`, a `ponder serve` replica for GraphQL),
 * configured only by the real environment.
 *
 * Ponder's CLI loads .env.local itself, so the children get every key of it that the
 * environment lacks as "" (unset): a production process can never run on a local default.
 */
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
import { ponderAnswering, ponderCommand, ponderStartCommand, sidecarCommand } from "../lib/local/process";

const role = process.argv[2] ?? "all";
if (!["all", "indexer", "sidecar", "serve"].includes(role)) {
  process.stderr.write(`stakesync: unknown role "${role}" (expected indexer, sidecar or serve)\n`);
  process.exit(1);
}
// `ponder serve` loads ponder.config.ts as `ponder start` does: the indexer's settings.
const configRole = role === "serve" ? "indexer" : (role as "all" | "indexer" | "sidecar");

const missing = requiredInProduction(process.env, configRole).filter((name) => !process.env[name]?.trim());
if (missing.length > 0) {
  exitOnConfigError(
    `${missing.join(", ")} must be set in the environment for production (.env.local is only for npm run dev)`,
  );
}
const config = role === "sidecar" ? undefined : orExit(() => loadIndexerConfig(process.env));
if (configRole !== "indexer") orExit(() => loadSidecarConfig(process.env));
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
const sidecar = configRole === "indexer" ? undefined : await sidecarCommand();
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

if (config && role === "serve") {
  // Read-only GraphQL over the deployment's tables: its views schema when it has one, which the
  // indexer of each new deployment switches to its own once ready. Ponder's CLI run by hand
  // (`npx ponder serve`) would fill every setting missing here from .env.local.
  const serve = ponderCommand(config.memory, [
    "--log-format",
    "json",
    "serve",
    "--schema",
    config.viewsSchema ?? config.database.schema,
    "--port",
    String(config.port),
    ...(config.host ? ["--hostname", config.host] : []),
  ]);
  ponderChild = launch(serve.args, serve.env);
} else if (config) {
  const extra = [
    ...(config.viewsSchema ? ["--views-schema", config.viewsSchema] : []),
    ...(config.host ? ["--hostname", config.host] : []),
  ];
  const ponder = ponderStartCommand(config.memory, config.database.schema, config.port, extra);
  ponderChild = launch(ponder.args, ponder.env);
  const answering = sidecar && (await ponderAnswering(localPonderUrl(config.host, config.port), ponderChild));
  // Not after a stop asked for meanwhile: Ponder, told to stop, may still have answered, and a
  // sidecar started then ran with no Ponder until the supervisor's kill.
  if (answering && !stopRequested && ponderChild.exitCode === null && ponderChild.signalCode === null) launch(sidecar);
} else if (sidecar) {
  launch(sidecar);
}

/** Child processes for tests and the benchmark: Ponder and the sidecar as real node processes. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";
import { type PonderMemory, repoRoot } from "../config";
import { WaitAborted } from "../wait";
import { stopChild } from "./anvil";
import { cpuSeconds } from "./cpu";

export type RunningProcess = {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
  kill: () => Promise<void>;
  /** The highest resident set size since the process started (VmHWM), in MB; undefined once exited. */
  peakRssMb: () => number | undefined;
  /** The resident set size now (VmRSS). */
  rssMb: () => number | undefined;
  /** User and system CPU seconds so far; undefined once exited. */
  cpuSeconds: () => number | undefined;
};

export function spawnProcess(command: string, args: string[], env: Record<string, string>): RunningProcess {
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (d: Buffer) => {
    output += d;
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    stop: () => stopChild(child, "SIGTERM"),
    kill: async () => {
      child.kill("SIGKILL");
      await exited;
    },
    peakRssMb: () => statusMb(child.pid, "VmHWM"),
    rssMb: () => statusMb(child.pid, "VmRSS"),
    cpuSeconds: () => cpuSeconds(child.pid),
  };
}

/** The process has ended, by an exit or a signal (a SIGKILL leaves exitCode null). */
export function exited(proc: Pick<RunningProcess, "process">): boolean {
  return proc.process.exitCode !== null || proc.process.signalCode !== null;
}

/**
 * What a wait on `proc` ends with once it has exited (see `exited`): `name exited:` and the tail
 * of its log. The log is read to its end first, for 2 s at most: a process's exit can come
 * before the last lines of its output, the ones that say why.
 */
export async function exitedError(proc: Pick<RunningProcess, "process" | "output">, name: string, tail = 3000) {
  const open = [proc.process.stdout, proc.process.stderr].filter((stream) => stream && !stream.closed);
  await Promise.race([
    Promise.all(open.map((stream) => once(stream as Readable, "close"))),
    delay(2000, undefined, { ref: false }),
  ]);
  return new WaitAborted(`${name} exited:\n${proc.output().slice(-tail)}`);
}

/** For a `waitFor` check: ends the wait at once with `exitedError` if `proc` has exited. */
export async function throwIfExited(proc: Pick<RunningProcess, "process" | "output">, name: string, tail = 3000) {
  if (exited(proc)) throw await exitedError(proc, name, tail);
}

/** A size field of /proc/<pid>/status, in MB; undefined once the process is gone. */
function statusMb(pid: number | undefined, field: "VmHWM" | "VmRSS") {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+)`, "m"))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Ponder's CLI, run by node directly (not through npx), so a signal reaches Ponder itself. */
const ponderBin = path.join(repoRoot, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js");

/**
 * V8's young generation for the sidecar: semi-spaces of at most 16 MB. Node 24 lets them grow to
 * 64 MB each (128 MB of young generation, 1 MB to start), sized apart from `--max-old-space-size`.
 * The cap was set for both processes at first, measured on the 100k bench, full pipeline, one run
 * each: cold 44.1 s → 26.6 s, cached 16.4 s → 14.0 s, Ponder's peak RSS 530 → 441 MB (8 and 32 MB
 * gave the same within noise); Ponder has its own since (below).
 */
const SIDECAR_SEMI_SPACE_MB = 16;

/**
 * Ponder's: 8 MB, 24 MB less young generation than 16 and no slower (its young generation is
 * where its per-event objects live and die). At 1M events, cold, Ponder
 * peaked at 472 and 490 MB against 478–505 MB with 16 (two runs against four, 2026-12-05); at
 * 100k its runs took 12.8–13.9 s cold and 5.6–5.8 s cached against 13.5–16.4 s and 5.6–6.5 s
 * (bench/results/m1-semi8*.json, ab-semi8.json; docs/performance.md).
 */
const PONDER_SEMI_SPACE_MB = 8;

/** Gives Ponder's relative imports their format from a cache: a second less of CPU at each start (see the file). */
const esmScopeCache = pathToFileURL(path.join(repoRoot, "lib", "esm-scope-cache.mjs")).href;

/** Ponder's event-loop delay sampled every 10 ms, not every 1: 1.2–1.6 % of a core less while it idles (see the file). */
const eventLoopSampling = pathToFileURL(path.join(repoRoot, "lib", "event-loop-sampling.mjs")).href;

/** `spawn(process.execPath, args, { env: { ...env, ...command.env } })` runs Ponder's CLI within `memory`. */
export function ponderCommand(memory: PonderMemory, cliArgs: string[]) {
  return {
    args: [
      `--max-old-space-size=${memory.heapMb}`,
      `--max-semi-space-size=${PONDER_SEMI_SPACE_MB}`,
      "--import",
      esmScopeCache,
      "--import",
      eventLoopSampling,
      ponderBin,
      ...cliArgs,
    ],
    env: { PONDER_CACHE_BYTES: String(memory.cacheBytes) },
  };
}

/**
 * Resolves true once Ponder answers `<url>/health` (built, and connected to its database); false
 * if it exits first. `npm start` starts the sidecar then: the sidecar's own start, a quarter
 * second of CPU, no longer competes with Ponder's build, and it has nothing to do before
 * Ponder's tables exist.
 */
export async function ponderAnswering(url: string, ponder: ChildProcess): Promise<boolean> {
  while (!exited({ process: ponder })) {
    // Bounded: a server that took the connection and never answers (a Ponder starting on a busy
    // machine) held a fetch without one for undici's five minutes.
    if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/** `ponder start` with JSON logs, as `npm start`, the tests and the bench run it. */
export function ponderStartCommand(memory: PonderMemory, schema: string, port: number, extraArgs: string[] = []) {
  return ponderCommand(memory, [
    "--log-format",
    "json",
    "start",
    "--schema",
    schema,
    "--port",
    String(port),
    ...extraArgs,
  ]);
}

/**
 * Dependencies stay in node_modules, but for viem: the sidecar uses two functions of it
 * (formatUnits; isAddress, for lib/config.ts's checksum), and importing viem's index costs a
 * process 36 MB of resident memory (77 MB against 41 on Node 24; an idle sidecar 141 MB against
 * 160, three starts each, 2026-12-05). Bundled, esbuild keeps those functions alone; abitype
 * too, which viem's index imports and nothing of which is left; and the keccak of
 * @noble/hashes that isAddress uses (viem's dependency, not ours: not to be imported by name). test/fast/sidecar-bundle.test.ts pins what the bundle imports.
 */
const dependenciesExceptViem: Plugin = {
  name: "dependencies-except-viem",
  setup(b) {
    // A package's name: not the entry point, a path, or a package's own `#` import.
    b.onResolve({ filter: /^[^./#]/ }, (args) =>
      args.kind === "entry-point" ||
      path.isAbsolute(args.path) ||
      /^(viem|abitype|@noble\/hashes)($|\/)/.test(args.path)
        ? undefined
        : { path: args.path, external: true },
    );
  },
};

let sidecarBuild: Promise<string[]> | undefined;

/**
 * `node <args>` runs the sidecar: sidecar/main.ts bundled by esbuild into dist/sidecar.mjs, built
 * from source once per calling process. Through tsx the sidecar took 0.5 s of CPU to start, half
 * of it tsx's own, and it starts next to Ponder's build. Dependencies stay in node_modules but
 * viem (above); dist/ sits directly under the repository root, so lib/config.ts's repoRoot
 * resolves as from lib/.
 *
 * The source map goes beside it (dist/sidecar.mjs.map) and is not loaded: with it inline and
 * `--enable-source-maps` the sidecar's resident set was 10 MB larger (124 against 114 MB idle,
 * two starts each, 2026-12-05), against a budget of 150 MB. A stack trace names the bundle's
 * lines and the functions' own names; `NODE_OPTIONS=--enable-source-maps` maps them to sidecar/.
 */
export function sidecarCommand(): Promise<string[]> {
  if (sidecarBuild) return sidecarBuild;
  const building = (async () => {
    const entry = path.join(repoRoot, "sidecar", "main.ts");
    const out = path.join(repoRoot, "dist", "sidecar.mjs");
    const { outputFiles } = await build({
      entryPoints: [entry],
      bundle: true,
      plugins: [dependenciesExceptViem],
      platform: "node",
      format: "esm",
      target: "node22",
      sourcemap: "linked",
      outfile: out,
      write: false,
      logLevel: "silent",
    });
    // Each written aside, then renamed: test files build it in parallel while others start it.
    // The map first, so that the bundle never points at a map not yet there.
    const files = [...outputFiles].sort((a, b) => Number(a.path === out) - Number(b.path === out));
    try {
      mkdirSync(path.dirname(out), { recursive: true });
      for (const file of files) {
        const temporary = `${file.path}.${process.pid}.tmp`;
        writeFileSync(temporary, file.contents);
        renameSync(temporary, file.path);
      }
    } catch {
      return [`--max-semi-space-size=${SIDECAR_SEMI_SPACE_MB}`, "--import", "tsx", entry]; // a read-only checkout
    }
    return [`--max-semi-space-size=${SIDECAR_SEMI_SPACE_MB}`, out];
  })();
  sidecarBuild = building;
  // A failed build is not kept: the next caller builds again.
  building.catch(() => {
    if (sidecarBuild === building) sidecarBuild = undefined;
  });
  return building;
}

/** Runs the anvil binary from the npm package @foundry-rs/anvil as a child process. */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { waitFor } from "../wait";

const require = createRequire(import.meta.url);

/** The platform binary itself, not the npm wrapper, so a signal reaches anvil directly. */
export function anvilBinary(): string {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as string];
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", "anvil");
}

export type AnvilOptions = {
  port: number;
  chainId?: number;
  /** Seconds between blocks; unset mines one block per transaction. */
  blockTime?: number;
  /** Load and save chain state (block hashes included) across restarts. */
  stateFile?: string;
  /** Load chain state from this file without ever writing it back. */
  loadStateFile?: string;
  /** Where anvil's output goes; default: discarded. */
  log?: (line: string) => void;
};

export type Anvil = { rpcUrl: string; wsUrl: string; process: ChildProcess; stop: () => Promise<void> };

export async function startAnvil(options: AnvilOptions): Promise<Anvil> {
  const args = ["--host", "127.0.0.1", "--port", String(options.port), "--chain-id", String(options.chainId ?? 31337)];
  if (options.blockTime !== undefined) args.push("--block-time", String(options.blockTime));
  // --state-interval keeps the file fresh, so even a crash loses at most a few seconds of chain.
  if (options.stateFile) args.push("--state", options.stateFile, "--state-interval", "5");
  if (options.loadStateFile) args.push("--load-state", options.loadStateFile);
  const child = spawn(anvilBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) options.log?.(line);
  };
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);

  const rpcUrl = `http://127.0.0.1:${options.port}`;
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  // Anvil parses a state file before it listens: the bench's 1M-event chain (1.3 GB) takes longer
  // than 30 s on 2 cores.
  const timeoutMs = options.loadStateFile ? 600_000 : 30_000;
  await waitFor(
    `anvil on ${rpcUrl}`,
    async () => {
      if (exited) throw new Error(`anvil exited before listening on port ${options.port}`);
      const response = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      }).catch(() => undefined);
      return response?.ok === true;
    },
    { timeoutMs },
  );

  return {
    rpcUrl,
    wsUrl: `ws://127.0.0.1:${options.port}`,
    process: child,
    stop: () => stopChild(child, "SIGINT"),
  };
}

/** Signals a child and resolves once it has exited (SIGKILL after 10 s). */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * `npm run dev` as a newcomer runs it, in a real terminal (util-linux `script` gives it a
 * pseudo-terminal, so Ctrl-C is the terminal's own SIGINT to the foreground process group):
 * the stack starts with no configuration, the demo commands act on it, welcome emails are
 * caught and printed, Ctrl-C stops everything without a stack trace, and a second run resumes.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { repoRoot } from "../lib/config";
import { demoDeveloper } from "../lib/local/demo";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";

let dataDir: string;
let env: Record<string, string>;
const terminals: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "stakesync-dev-"));
  const [pg, rpc, ponder, sidecar, smtp] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && key !== "NODE_ENV"),
  ) as Record<string, string>;
  // Everything else comes from .env.local, as for a newcomer; only ports and the data folder move.
  env = {
    ...inherited,
    STAKESYNC_DATA_DIR: dataDir,
    DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${pg}/stakesync`,
    RPC_URL: `http://127.0.0.1:${rpc}`,
    WS_URL: `ws://127.0.0.1:${rpc}`,
    PONDER_PORT: String(ponder),
    SIDECAR_PORT: String(sidecar),
    DEV_SMTP_PORT: String(smtp),
  };
});

afterAll(() => {
  for (const t of terminals) if (t.exitCode === null) t.kill("SIGKILL");
  // Whatever a failed run left behind.
  for (const pid of stackPids()) process.kill(pid, "SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** Every process of this test's stacks: each inherits STAKESYNC_DATA_DIR in its environment. */
function stackPids(): number[] {
  const mark = `STAKESYNC_DATA_DIR=${dataDir}`;
  return readdirSync("/proc")
    .filter((pid) => /^\d+$/.test(pid) && Number(pid) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(mark);
      } catch {
        return false; // gone, or not ours to read
      }
    })
    .map(Number);
}

/** `npm run dev` in a pseudo-terminal; `output()` is what the terminal shows, colours removed. */
function terminal() {
  const child = spawn("script", ["-qfec", "npm run dev", "/dev/null"], { cwd: repoRoot, env, stdio: "pipe" });
  terminals.push(child);
  let text = "";
  const take = (chunk: Buffer) => {
    text += stripVTControlCharacters(chunk.toString());
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    output: () => text,
    /** Waits for `pattern` in the output; a timeout shows the end of the output. */
    see: (pattern: RegExp, timeoutMs = 240_000) =>
      waitFor(`${pattern} in npm run dev's output`, () => pattern.test(text), { timeoutMs, intervalMs: 250 }).catch(
        (error: Error) => {
          throw new Error(`${error.message}\n--- output ---\n${text.slice(-4000)}`);
        },
      ),
    ctrlC: () => child.stdin.write("\x03"),
    exited,
  };
}

/** `npx stakesync demo …` as the newcomer types it in another terminal. */
function demo(...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(repoRoot, "bin", "stakesync.js"), "demo", ...args], {
    cwd: repoRoot,
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

/** What a clean stop must not print: PostgreSQL or anvil dying under Ponder and the sidecar. */
const UGLY = [
  /terminating connection due to administrator command/,
  /ECONNREFUSED/,
  /Failed to shutdown/,
  /^\s+at .+:\d+:\d+\)?$/m,
  /Unhandled|uncaught/i,
];

it("starts with no configuration, acts on demo commands, catches welcome emails, stops cleanly on Ctrl-C, resumes, and stops when its terminal closes", async () => {
  const first = terminal();
  await first.see(/\[dev\] ready:/);
  await first.see(/npx stakesync demo register frank/);
  const sidecar = `http://127.0.0.1:${env.SIDECAR_PORT}`;
  const ponder = `http://127.0.0.1:${env.PONDER_PORT}`;

  // The seeded developers with a stake are welcomed, and the welcomes are printed and kept.
  for (const name of ["alice", "bob", "carol", "dave"]) {
    await first.see(
      new RegExp(`\\[mail\\] caught "Welcome[^"]*" for wallet ${demoDeveloper(name).wallet.toLowerCase()}`),
    );
  }
  expect(readdirSync(path.join(dataDir, "mail")).filter((f) => f.endsWith(".eml"))).toHaveLength(4);

  // The demo slash is in Ponder's GraphQL, as the README's example query asks.
  const graphql = await fetch(`${ponder}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: '{ stakeEvents(where: { kind: "slashed" }) { items { developer amount } } }' }),
  }).then((r) => r.json() as Promise<{ data: { stakeEvents: { items: { developer: string; amount: string }[] } } }>);
  expect(graphql.data.stakeEvents.items).toEqual([
    { developer: demoDeveloper("bob").wallet.toLowerCase(), amount: "10000000" },
  ]);

  // A newcomer signs up frank and stakes for him: active, welcomed once.
  const frank = demoDeveloper("frank").wallet.toLowerCase();
  expect(demo("register", "frank")).toMatch(/^registered frank/);
  expect(demo("stake", "frank", "25")).toMatch(/^stake 25 for frank/);
  await first.see(new RegExp(`\\[mail\\] caught "Welcome[^"]*" for wallet ${frank}`));
  const view = (await (await fetch(`${sidecar}/developers/${frank}`)).json()) as {
    status: string;
    stakeAmount: string;
  };
  expect(view).toMatchObject({ status: "active", stakeAmount: "25.000000" });
  expect(first.output()).not.toMatch(/alert firing: indexer_down/);

  // Ctrl-C in the terminal: everything stops, in order, without a stack trace.
  const beforeStop = first.output().length;
  first.ctrlC();
  // npm itself answers a terminal's SIGINT with 130 (128 + SIGINT), as shells do.
  expect([0, 130]).toContain(await first.exited);
  const stopping = first.output().slice(beforeStop);
  expect(stopping).toMatch(/\[dev\] stopped; `npm run dev` resumes/);
  for (const pattern of UGLY) expect(stopping).not.toMatch(pattern);
  expect(stackPids()).toEqual([]);

  // The second run finds the deployment and the developers where the first left them.
  const second = terminal();
  await second.see(/StakeVault 0x[0-9a-fA-F]{40} already deployed/);
  await second.see(/\[dev\] ready:/);
  await waitFor(
    "the sidecar's status",
    async () => (await fetch(`${sidecar}/status`).catch(() => undefined))?.ok === true,
    {
      timeoutMs: 120_000,
    },
  );
  await waitFor(
    "frank still active after the restart",
    async () => {
      const again = (await (await fetch(`${sidecar}/developers/${frank}`)).json()) as { status: string };
      return again.status === "active";
    },
    { timeoutMs: 120_000 },
  );
  // The terminal closes under it (its window shut): the stack stops by itself, leaving nothing.
  const terminalPid = terminals.at(-1)?.pid as number;
  process.kill(terminalPid, "SIGKILL");
  await waitFor("every process of the stack gone", () => stackPids().length === 0, { timeoutMs: 120_000 });
  // Exactly one welcome each, across both runs.
  const mails = readdirSync(path.join(dataDir, "mail")).map((f) => readFileSync(path.join(dataDir, "mail", f), "utf8"));
  expect(mails).toHaveLength(5);
}, 600_000);

it.each(["DATABASE_URL", "SIDECAR_DATABASE_URL"])(
  "refuses a %s exported for another machine, with one line, before it starts anything",
  (variable) => {
    const result = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts", "dev.ts")], {
      cwd: repoRoot,
      encoding: "utf8",
      env: { ...env, [variable]: "postgresql://app:secret@db.staging.example:5432/app" },
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    // Named, never printed: the URL carries a password.
    expect(result.stderr.trim()).toBe(
      `stakesync dev: ${variable} points to another machine (exported in this shell?): npm run dev runs only on this machine's PostgreSQL and anvil; unset it`,
    );
    expect(result.stdout).not.toContain("[dev]");
    expect(stackPids()).toEqual([]);
  },
);

/** `npm start` in production mode: Ponder and the sidecar from the environment; SIGTERM stops both. */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { chainEnv, cleanup, developer, freshDatabase, run, sql, startChain } from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

afterAll(cleanup);

/** Every process's command line and environment, as NUL-separated strings from /proc. */
function processes() {
  return readdirSync("/proc")
    .filter((pid) => /^\d+$/.test(pid))
    .flatMap((pid) => {
      try {
        const read = (file: string) => readFileSync(`/proc/${pid}/${file}`, "utf8").split("\0");
        return [{ cmdline: read("cmdline"), environ: read("environ") }];
      } catch {
        return []; // gone, or not ours to read
      }
    });
}

/** A Node.js older than 22 on this machine (the system node here is 20), or undefined. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir, "node");
    if (dir.includes("node_modules") || !existsSync(candidate)) continue;
    const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
    if (Number(version.slice(1).split(".")[0]) < 22) return candidate;
  }
  return undefined;
}

it.runIf(olderNode())("npm start refuses an older Node.js with one line", async () => {
  const node = olderNode() as string;
  const result = spawnSync(node, ["--import", "tsx", "scripts/start.ts"], {
    encoding: "utf8",
    env: { PATH: process.env.PATH },
  });
  expect(result.status).toBe(1);
  expect(result.stderr.trim().split("\n")).toHaveLength(1);
  expect(result.stderr).toMatch(/^stakesync: Node\.js \d+\.[\d.]+ is too old: install Node\.js 22\.15 or newer/);
});

// Node.js 18.19 (a distribution's own), whose node:util lacks parseEnv: a module of the stack's
// that imports it fails to link before any code runs, so the check must come before them all.
it.each([
  ["npm start", ["--import", "tsx", "scripts/start.ts"]],
  ["npx stakesync", ["bin/stakesync.js", "verify"]],
  ["npm run dev", ["--import", "tsx", "scripts/dev.ts"]],
])("%s refuses Node.js 18.19 with one line, before loading a module it cannot link", (_, args) => {
  const result = spawnSync(process.execPath, ["--import", "./test/helpers/old-node.mjs", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH },
  });
  expect(result.stderr.trim().split("\n"), result.stderr).toEqual([
    "stakesync: Node.js 18.19.0 is too old: install Node.js 22.15 or newer (24 LTS recommended)",
  ]);
  expect(result.status).toBe(1);
});

it("runs ponder start and the sidecar, syncs, and stops both on SIGTERM", async () => {
  const chain = await startChain();
  await chain.vault.fund(10n ** 12n);
  const databaseUrl = await freshDatabase();
  const [ponderPort, sidecarPort] = [await freePort(), await freePort()];
  const proc = run(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    ...chainEnv([chain]),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: "prod_ponder",
    PONDER_PORT: String(ponderPort),
    SIDECAR_PORT: String(sidecarPort),
    SYNC_POLL_MS: "100",
    PONDER_MAX_HEAP_MB: "300",
  });
  await waitFor(
    "ponder and sidecar",
    async () => {
      const [p, s] = await Promise.all([
        fetch(`http://127.0.0.1:${ponderPort}/ready`).catch(() => undefined),
        fetch(`http://127.0.0.1:${sidecarPort}/status`).catch(() => undefined),
      ]);
      return p?.status === 200 && s?.status === 200;
    },
    { timeoutMs: 120_000 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nnpm start's output ends:\n${proc.output().slice(-4000)}`);
  });

  // Ponder runs within its memory settings: the heap given, the row cache at its default.
  const ponder = processes().find(
    (p) => p.cmdline.some((arg) => arg.endsWith("ponder.js")) && p.cmdline.includes("prod_ponder"),
  );
  expect(ponder?.cmdline).toContain("--max-old-space-size=300");
  expect(ponder?.environ).toContain(`PONDER_CACHE_BYTES=${16 * 2 ** 20}`);

  // Both run on the Node.js that npm put first on the PATH (the `node` devDependency), not the
  // machine's older system node: Ponder 0.17 needs 22 or newer.
  for (const port of [ponderPort, sidecarPort]) {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const major = Number(metrics.match(/^nodejs_version_info\{[^}]*major="(\d+)"/m)?.[1]);
    expect(major, `Node.js major version on port ${port}`).toBeGreaterThanOrEqual(22);
  }

  const [wallet] = wallets(1, "prod") as [`0x${string}`];
  await sql(databaseUrl, "INSERT INTO developers (wallet_address) VALUES ($1)", [wallet]);
  await chain.vault.stakeFor(wallet, 3_000_000n);
  await mine(chain, 2);
  await waitFor("activation", async () => (await developer(databaseUrl, wallet))?.status === "active");

  // A GraphQL replica (`npm run start:serve`) on the deployment's tables: the stake is there. With
  // no DATABASE_URL it is refused, not filled in from .env.local as Ponder's own CLI would.
  const servePort = await freePort();
  const serveEnv = { ...chainEnv([chain]), DATABASE_SCHEMA: "prod_ponder", PONDER_PORT: String(servePort) };
  const refused = spawnSync(process.execPath, ["--import", "tsx", "scripts/start.ts", "serve"], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...serveEnv },
  });
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(/DATABASE_URL must be set/);
  const serve = run(process.execPath, ["--import", "tsx", "scripts/start.ts", "serve"], {
    ...serveEnv,
    DATABASE_URL: databaseUrl,
  });
  const staked = async () =>
    fetch(`http://127.0.0.1:${servePort}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ stakeEvents { items { developer amount } } }" }),
    })
      .then((r) => r.json() as Promise<{ data?: { stakeEvents: { items: { developer: string; amount: string }[] } } }>)
      .then((r) => r.data?.stakeEvents.items.find((e) => e.developer === wallet.toLowerCase())?.amount)
      .catch(() => undefined);
  await waitFor("the replica's answer", async () => (await staked()) !== undefined, { timeoutMs: 60_000 }).catch(
    (error: Error) => {
      throw new Error(`${error.message}\nnpm run start:serve's output ends:\n${serve.output().slice(-3000)}`);
    },
  );
  expect(await staked()).toBe("3000000");
  serve.process.kill("SIGTERM");
  expect(await serve.exited).toBe(0);

  proc.process.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  // A graceful stop releases Ponder's schema lock: the next start neither waits for it nor
  // has to treat the schema as crashed.
  const [meta] = await sql<{ locked: string }>(
    databaseUrl,
    "SELECT value->>'is_locked' AS locked FROM prod_ponder._ponder_meta WHERE key = 'app'",
  );
  expect(meta?.locked).toBe("0");
  await expect(fetch(`http://127.0.0.1:${sidecarPort}/health`)).rejects.toThrow();
  await expect(fetch(`http://127.0.0.1:${ponderPort}/health`)).rejects.toThrow();
});

it("exits 1 when one part exits with an error, though the other then stops cleanly (a supervisor restarts on failure)", async () => {
  const chain = await startChain();
  const databaseUrl = await freshDatabase();
  // A developers table the sidecar refuses (a stake with a scale): it exits 1 once Ponder answers.
  await sql(
    databaseUrl,
    "CREATE TABLE developers (wallet_address text PRIMARY KEY, email text, status text NOT NULL DEFAULT 'pending', stake_amount numeric(10, 2) NOT NULL DEFAULT 0, staked_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())",
  );
  const [ponderPort, sidecarPort] = [await freePort(), await freePort()];
  const proc = run(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    ...chainEnv([chain]),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: "failing_ponder",
    PONDER_PORT: String(ponderPort),
    SIDECAR_PORT: String(sidecarPort),
    PONDER_MAX_HEAP_MB: "300",
  });
  // Before, Ponder, stopped after the sidecar, exited 0 last, and npm start with it.
  expect(await proc.exited).toBe(1);
  expect(proc.output()).toContain("column stake_amount is numeric(10,2)");
});

/** Bad or missing configuration stops the process at start: exit 1, one line naming the variable. */
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadChains, loadIndexerConfig, loadSidecarConfig } from "../lib/config";
import { throwIfExited } from "../lib/local/process";
import { startSidecar as startLocalSidecar } from "../lib/local/stack";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import { cleanup, run, spawnForTest } from "./helpers/stack";

afterAll(cleanup);

const base = {
  CHAIN_ID: "31337",
  RPC_URL: "http://127.0.0.1:1",
  STAKE_VAULT_ADDRESS: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  DATABASE_URL: "postgresql://u:secret@127.0.0.1:1/db",
};

async function start(env: Record<string, string>) {
  const proc = run(process.execPath, ["--import", "tsx", "scripts/start.ts", "indexer"], env);
  return { code: await proc.exited, output: proc.output() };
}

describe("npm start configuration", () => {
  it("refuses to start without STAKE_VAULT_ADDRESS, naming it, even though .env.local has one", async () => {
    const { STAKE_VAULT_ADDRESS: _, ...env } = base;
    const { code, output } = await start(env);
    expect(code).toBe(1);
    expect(output.trim().split("\n")).toHaveLength(1);
    expect(output).toMatch(/STAKE_VAULT_ADDRESS/);
  });

  it("refuses a malformed value with one line naming it and never prints secrets", async () => {
    const { code, output } = await start({ ...base, CONFIRMATIONS: "two" });
    expect(code).toBe(1);
    expect(output.trim().split("\n")).toEqual([expect.stringContaining("CONFIRMATIONS: expected")]);

    const bad = await start({ ...base, DATABASE_URL: "mysql://u:secret@h/db" });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/DATABASE_URL: expected a postgresql:\/\/ connection URL/);
    expect(bad.output).not.toContain("secret");
  });
});

describe("a stop before the database is there", () => {
  it("exits 0 on SIGTERM while the sidecar still waits for its database", async () => {
    const port = await freePort();
    const sidecar = await startLocalSidecar(
      { ...base, SIDECAR_DATABASE_URL: base.DATABASE_URL, RETRY_DELAY_MS: "200" },
      { port, spawn: spawnForTest },
    );
    // It answers HTTP from the first second, and keeps trying the database meanwhile.
    await waitFor("the sidecar's /health", async () => {
      await throwIfExited(sidecar, "sidecar", 2000);
      return (await fetch(`${sidecar.url}/health`).catch(() => undefined))?.ok === true;
    });
    await waitFor("a failed attempt to prepare the database", () =>
      /database unreachable; retrying/.test(sidecar.output()),
    );
    sidecar.process.kill("SIGTERM");
    expect(await sidecar.exited).toBe(0); // not a death by signal (null): systemd counts that a failure
    expect(sidecar.output()).toMatch(/"msg":"stopping"/);
  });
});

describe("the README's variable tables", () => {
  it('name every variable lib/config.ts reads, but the local stack\'s own (README "Run it")', () => {
    const read = new Set([...readFileSync("lib/config.ts", "utf8").matchAll(/"([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1]));
    const local = ["STAKESYNC_DATA_DIR", "DEV_SMTP_PORT"];
    const rows = readFileSync("README.md", "utf8")
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .map((line) => line.split("|")[1] ?? "");
    const documented = (name: string) => rows.some((r) => r.includes(`\`${name}\``) || r.includes(`\`${name} `));
    expect([...read].filter((name) => name !== undefined && !local.includes(name) && !documented(name))).toEqual([]);
  });
});

describe("chain configuration", () => {
  it("reads one chain, with a fallback RPC list and the default confirmations", () => {
    const [chain] = loadChains({ ...base, RPC_URL: "http://a:1, https://b:2", WS_URL: "ws://a:1" });
    expect(chain).toMatchObject({
      id: 31337,
      rpcUrls: ["http://a:1", "https://b:2"],
      wsUrl: "ws://a:1",
      confirmations: 2,
    });
  });

  it("reads several chains through CHAINS and per-chain variables", () => {
    const chains = loadChains({
      CHAINS: "42161,8453",
      CONFIRMATIONS: "3",
      RPC_URL_42161: "https://arb",
      STAKE_VAULT_ADDRESS_42161: base.STAKE_VAULT_ADDRESS,
      RPC_URL_8453: "https://base",
      STAKE_VAULT_ADDRESS_8453: base.STAKE_VAULT_ADDRESS,
      START_BLOCK_8453: "100",
      CONFIRMATIONS_8453: "10",
    });
    expect(chains.map((c) => [c.id, c.startBlock, c.confirmations])).toEqual([
      [42161, 0, 3],
      [8453, 100, 10],
    ]);
  });

  it("takes EFFECTS_FROM_BLOCK per chain only, with several: one chain's block on another welcomes nobody there", () => {
    const two = {
      CHAINS: "42161,8453",
      RPC_URL_42161: "https://arb",
      STAKE_VAULT_ADDRESS_42161: base.STAKE_VAULT_ADDRESS,
      RPC_URL_8453: "https://base",
      STAKE_VAULT_ADDRESS_8453: base.STAKE_VAULT_ADDRESS,
    };
    expect(() => loadChains({ ...two, EFFECTS_FROM_BLOCK: "300000000" })).toThrow(
      /EFFECTS_FROM_BLOCK: expected EFFECTS_FROM_BLOCK_<id> for each chain/,
    );
    expect(loadChains({ ...two, EFFECTS_FROM_BLOCK: "0" }).map((c) => c.effectsFromBlock)).toEqual([0, 0]);
    const perChain = loadChains({ ...two, EFFECTS_FROM_BLOCK_42161: "300000000", EFFECTS_FROM_BLOCK_8453: "25000000" });
    expect(perChain.map((c) => c.effectsFromBlock)).toEqual([300000000, 25000000]);
    expect(loadChains({ ...base, EFFECTS_FROM_BLOCK: "15" })[0]?.effectsFromBlock).toBe(15);
  });

  it.each([
    [{ CHAINS: "1,1" }, "CHAINS"],
    [{ CHAINS: "10", RPC_URL_10: "https://x" }, "STAKE_VAULT_ADDRESS_10"],
    [{ ...base, STAKE_VAULT_ADDRESS: "0x1234" }, "STAKE_VAULT_ADDRESS"],
    [{ ...base, RPC_URL: "ftp://x" }, "RPC_URL"],
    [{ ...base, WS_URL: "http://x" }, "WS_URL"],
    [{ ...base, START_BLOCK: "-1" }, "START_BLOCK"],
    [{ ...base, DATABASE_SCHEMA: "public" }, "DATABASE_SCHEMA"],
    [{ ...base, PONDER_PORT: "70000" }, "PONDER_PORT"],
    [{ ...base, PONDER_MAX_HEAP_MB: "64" }, "PONDER_MAX_HEAP_MB"],
    [{ ...base, PONDER_CACHE_BYTES: "lots" }, "PONDER_CACHE_BYTES"],
    // Ponder itself refuses a polling interval under 100 ms, at its start.
    [{ ...base, POLLING_INTERVAL_MS: "50" }, "POLLING_INTERVAL_MS"],
    // A typo in a checksummed address (its last digit; one letter's case): a contract with no events.
    [{ ...base, STAKE_VAULT_ADDRESS: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0513" }, "STAKE_VAULT_ADDRESS"],
    [{ ...base, STAKE_VAULT_ADDRESS: "0xE7f1725E7734CE288F8367e1Bb143E90bb3F0512" }, "STAKE_VAULT_ADDRESS"],
    // As the _<id> variables are named: not 0xa4b1 (42161) nor 042161.
    [{ CHAINS: "0xa4b1", RPC_URL_42161: "https://x" }, "CHAINS"],
    [{ CHAINS: "042161", RPC_URL_42161: "https://x" }, "CHAINS"],
    // Stored as integer: above it, every insert failed, every round (Palm's id, 11297108109).
    [{ ...base, CHAIN_ID: "11297108109" }, "CHAIN_ID"],
    [{ CHAINS: "11297108109", RPC_URL_11297108109: "https://x" }, "CHAINS"],
    // The "//" forgotten: pg would try the local socket, with the password in its error.
    [{ ...base, DATABASE_URL: "postgres:user:secret@dbhost:5432/app" }, "DATABASE_URL"],
  ])("names the variable in error %#", (env, variable) => {
    expect(() => loadIndexerConfig(env)).toThrow(ConfigError);
    try {
      loadIndexerConfig(env);
    } catch (error) {
      expect((error as ConfigError).variable).toBe(variable);
    }
  });
});

describe("sidecar configuration", () => {
  const sidecarBase = { ...base, DATABASE_SCHEMA: "stakevault" };
  it("watches Ponder where it listens: at a private PONDER_HOST, else at loopback, unless PONDER_URL says", () => {
    const env = { ...base, PONDER_PORT: "4000" };
    expect(loadSidecarConfig(env).ponderUrl).toBe("http://127.0.0.1:4000");
    expect(loadSidecarConfig({ ...env, PONDER_HOST: "0.0.0.0" }).ponderUrl).toBe("http://127.0.0.1:4000");
    // Bound to a private address, Ponder never answers at 127.0.0.1: npm start waited there for good.
    expect(loadSidecarConfig({ ...env, PONDER_HOST: "10.0.0.7" }).ponderUrl).toBe("http://10.0.0.7:4000");
    expect(loadSidecarConfig({ ...env, PONDER_HOST: "fd00::7" }).ponderUrl).toBe("http://[fd00::7]:4000");
    expect(loadSidecarConfig({ ...env, PONDER_HOST: "10.0.0.7", PONDER_URL: "http://ponder:4000" }).ponderUrl).toBe(
      "http://ponder:4000",
    );
  });

  it("takes PONDER_URL without its trailing slash: Ponder answers //health with 404", () => {
    expect(loadSidecarConfig({ ...base, PONDER_URL: "http://127.0.0.1:4000/" }).ponderUrl).toBe(
      "http://127.0.0.1:4000",
    );
    expect(loadSidecarConfig({ ...base, PONDER_URL: "https://ponder.internal/api//" }).ponderUrl).toBe(
      "https://ponder.internal/api",
    );
  });

  it("refuses a database URL whose query would override the sidecar's connection bounds, naming the option and not the URL", () => {
    for (const [variable, query] of [
      ["DATABASE_URL", "query_timeout=600000"],
      ["DATABASE_URL", "sslmode=require&statement_timeout=1"],
      ["SIDECAR_DATABASE_URL", "options=-c%20idle_session_timeout%3D0"],
      ["DATABASE_URL", "options=--statement_timeout%3D1"],
      // node-postgres takes the last of a repeated option.
      ["DATABASE_URL", "options=endpoint%3Dep-x&options=-c%20statement_timeout%3D0"],
    ] as const) {
      const env = { ...base, [variable]: `postgresql://u:secret@db.internal:5432/app?${query}` };
      let error: unknown;
      try {
        loadSidecarConfig(env);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe(variable);
      expect((error as Error).message).toMatch(/got \?(query_timeout|statement_timeout|options)/);
      expect((error as Error).message).not.toContain("secret");
    }
    expect(() => loadIndexerConfig({ ...base, DATABASE_URL: "postgresql://u:p@h/db?query_timeout=1" })).toThrow(
      /^DATABASE_URL: /,
    );
    // Where and how to connect, as before; and what node-postgres ignores: Neon's console gives
    // `channel_binding`, an ORM's URL shared with the application `schema`, Neon's endpoint
    // `options` (no -c in it).
    for (const ok of [
      "postgresql://u:secret@db.internal:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
      "postgresql://u:p@ep-x-pooler.us-east-2.aws.neon.tech/db?sslmode=require&channel_binding=require",
      "postgresql://u:p@db.internal/app?schema=public&sslnegotiation=direct&sslmode=require",
      "postgresql://u:p@db.internal/app?options=endpoint%3Dep-x",
    ]) {
      expect(loadSidecarConfig({ ...base, DATABASE_URL: ok }).database.url).toBe(ok);
    }
    const socket = "postgresql://u:p@localhost/app?host=/tmp&port=5432";
    expect(loadSidecarConfig({ ...base, SIDECAR_DATABASE_URL: socket }).database.url).toBe(socket);
  });

  it("refuses HEAD_STILL_MS under 10 s: the head is polled every 2 s, and /ready flapped between polls", () => {
    expect(() => loadSidecarConfig({ ...base, HEAD_STILL_MS: "1500" })).toThrow(
      /^HEAD_STILL_MS: expected milliseconds from 10000/,
    );
    expect(() => loadChains({ ...base, HEAD_STILL_MS: "9999" })).toThrow(/^HEAD_STILL_MS/);
    expect(loadChains({ ...base, HEAD_STILL_MS: "10000" })[0]?.headStillMs).toBe(10_000);
  });

  it("takes any ADMIN_TOKEN: a short one is warned of at start, not a reason to lose the sidecar", () => {
    expect(loadSidecarConfig({ ...base, ADMIN_TOKEN: "secret" }).adminToken).toBe("secret");
  });

  it("refuses RETRY_DELAY_MS below 10: the sync's backoff starts from it, and a failing round would spin", () => {
    expect(() => loadSidecarConfig({ ...sidecarBase, RETRY_DELAY_MS: "0" })).toThrow(
      new ConfigError("RETRY_DELAY_MS", "milliseconds from 10 to 2147483647"),
    );
    expect(loadSidecarConfig({ ...sidecarBase, RETRY_DELAY_MS: "10" }).retryDelayMs).toBe(10);
  });
  it("refuses MAX_LAG_BLOCKS at or under a chain's CONFIRMATIONS: /ready would never be 200, nor the lag alert clear", () => {
    // A chain of fast blocks (an L2) wants hundreds of confirmations; MAX_LAG_BLOCKS' default is 100.
    expect(() => loadSidecarConfig({ ...sidecarBase, CONFIRMATIONS: "150" })).toThrow(
      /^MAX_LAG_BLOCKS: expected more blocks than chain \d+'s CONFIRMATIONS \(150\)/,
    );
    expect(loadSidecarConfig({ ...sidecarBase, CONFIRMATIONS: "150", MAX_LAG_BLOCKS: "200" }).maxLagBlocks).toBe(200);
  });
  it("takes an address in one letter case without a checksum, and a socket URL without a host", () => {
    for (const a of [base.STAKE_VAULT_ADDRESS.toLowerCase(), `0x${base.STAKE_VAULT_ADDRESS.slice(2).toUpperCase()}`]) {
      expect(loadChains({ ...base, STAKE_VAULT_ADDRESS: a })[0]?.stakeVault).toBe(
        base.STAKE_VAULT_ADDRESS.toLowerCase(),
      );
    }
    expect(loadIndexerConfig({ ...base, DATABASE_URL: "postgresql:///db?host=/var/run/postgresql" }).database.url).toBe(
      "postgresql:///db?host=/var/run/postgresql",
    );
    expect(loadIndexerConfig({ ...base, DATABASE_URL: "POSTGRES://u:p@h/db" }).database.url).toBe(
      "POSTGRES://u:p@h/db",
    );
  });

  it("refuses a sender without an address, an SMTP URL without a host, and a timer Node cannot keep", () => {
    const mail = { ...sidecarBase, SMTP_URL: "smtp://mail.example.com" };
    for (const from of ["noreply", "noreply.example.com", "Stakesync <noreply@example.com", "x@.com", "Stakesync"]) {
      expect(() => loadSidecarConfig({ ...mail, MAIL_FROM: from }), from).toThrow(
        /^MAIL_FROM: expected a sender address/,
      );
    }
    for (const from of [
      "noreply@example.com",
      "Stakesync <noreply@example.com>",
      "stakesync dev <stakesync@localhost>",
      '"Stake Sync" <a@b.io>',
      '"no reply"@example.com',
      "noreply@example.com (Stakesync)",
    ]) {
      expect(loadSidecarConfig({ ...mail, MAIL_FROM: from }).mailFrom).toBe(from);
    }
    expect(() => loadSidecarConfig({ ...sidecarBase, SMTP_URL: "smtp://", MAIL_FROM: "a@b.io" })).toThrow(/^SMTP_URL/);
    // A password with a "/" or "#" makes no URL: refused with the variable's name, never printed.
    for (const url of ["smtp://user:pa/ss@smtp.example.com:587", "smtp://user:p#ss@smtp.example.com:587"]) {
      let error: unknown;
      try {
        loadSidecarConfig({ ...sidecarBase, SMTP_URL: url, MAIL_FROM: "a@b.io" });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(String(error)).not.toMatch(/pa\/ss|p#ss/);
    }
    // Never timers, only compared with the clock: "never" is a large number.
    expect(loadSidecarConfig({ ...sidecarBase, RECONCILE_INTERVAL_MS: "3000000000" }).reconcileIntervalMs).toBe(3e9);
    // Past 2^31 − 1 ms Node fires a timer after 1 ms: a poll "turned off" would spin.
    for (const variable of ["SYNC_POLL_MS", "RETRY_DELAY_MS"]) {
      expect(() => loadSidecarConfig({ ...sidecarBase, [variable]: "3000000000" }), variable).toThrow(
        new RegExp(`^${variable}: expected milliseconds from \\d+ to 2147483647`),
      );
    }
  });

  it("refuses SMTP_URL without MAIL_FROM and the reverse: either alone would silently send nothing", () => {
    expect(() => loadSidecarConfig({ ...sidecarBase, SMTP_URL: "smtp://127.0.0.1:25" })).toThrow(
      new ConfigError(
        "MAIL_FROM",
        "a sender address such as noreply@example.com or Stakesync <noreply@example.com> (SMTP_URL is set)",
      ),
    );
    expect(() => loadSidecarConfig({ ...sidecarBase, MAIL_FROM: "hello@stakesync.test" })).toThrow(
      new ConfigError("SMTP_URL", "an smtp:// or smtps:// URL (MAIL_FROM is set)"),
    );
    const both = loadSidecarConfig({
      ...sidecarBase,
      SMTP_URL: "smtp://127.0.0.1:25",
      MAIL_FROM: "hello@stakesync.test",
    });
    expect([both.smtpUrl, both.mailFrom]).toEqual(["smtp://127.0.0.1:25", "hello@stakesync.test"]);
  });

  it("reads replica Ponder schemas, refusing the one read first, a repeat, or a bad name", () => {
    expect(loadSidecarConfig(sidecarBase).ponderReplicaSchemas).toEqual([]);
    expect(loadSidecarConfig({ ...sidecarBase, PONDER_REPLICA_SCHEMAS: "stakevault_b, stakevault_c" })).toMatchObject({
      ponderSchema: "stakevault",
      ponderReplicaSchemas: ["stakevault_b", "stakevault_c"],
    });
    for (const value of ["stakevault", "b,b", "B", "b,,c"]) {
      expect(() => loadSidecarConfig({ ...sidecarBase, PONDER_REPLICA_SCHEMAS: value })).toThrow(
        /^PONDER_REPLICA_SCHEMAS: expected comma-separated/,
      );
    }
  });
});

describe("npx stakesync", () => {
  const cli = async (args: string[]) => {
    const proc = run(process.execPath, ["bin/stakesync.js", ...args], {});
    return { code: await proc.exited, output: proc.output() };
  };
  it("answers --help with its commands, exit 0, for itself and for each command", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.output).toContain("verify [--json] [--local]");
    const verify = await cli(["verify", "--help"]);
    expect(verify.code).toBe(0);
    expect(verify.output).toContain("exit 0 all match, 1 a mismatch, 2 an error");
    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain('unknown command "frobnicate"');
  });
});

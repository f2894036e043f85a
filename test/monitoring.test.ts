/**
 * docs/monitoring/ against the real Prometheus: promtool on the alert rules and their unit tests,
 * promtool on the live /metrics of Ponder and two sidecars, and a prometheus process that scrapes
 * that stack with the example config, loads the rules and answers every query of the Grafana
 * dashboard. Its graph page is screenshotted in Chromium.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { repoRoot } from "../lib/config";
import { throwIfExited } from "../lib/local/process";
import { freePort } from "../lib/ports";
import { waitFor } from "../lib/wait";
import {
  cleanup,
  type RunningProcess,
  run,
  type SidecarProcess,
  sql,
  startIndexedChain,
  startSidecar,
  type TestChain,
} from "./helpers/stack";
import { mine, wallets } from "./helpers/workload";

const monitoring = path.join(repoRoot, "docs", "monitoring");
const artifacts = path.join(repoRoot, "test-artifacts");
const promtool = process.env.PROMTOOL_PATH ?? "promtool";
const prometheusBin = process.env.PROMETHEUS_PATH ?? "prometheus";

/**
 * Ponder 0.17.7's `promtool check metrics` lint: prom-client's three `nodejs_active_*_total`
 * gauges (the sidecar drops them) and one of its own. A new one fails the test.
 */
const PONDER_LINT = [
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
  "ponder_http_server_request_duration_ms metric names should not contain abbreviated units",
];
/** Metrics whose series appear only at their first increment (no error yet in this test). */
const APPEAR_ON_FIRST_ERROR = ["ponder_rpc_request_error_total"];
type Rule = {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};
type RuleTest = {
  name?: string;
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[];
};
type Panel = { title: string; type: string; targets?: { expr: string }[] };

const readYaml = <T>(file: string) => parse(readFileSync(path.join(monitoring, file), "utf8")) as T;
const alertRules = () =>
  readYaml<{ groups: { name: string; rules: Rule[] }[] }>("alerts.yml").groups.flatMap((g) => g.rules);
const dashboard = () =>
  JSON.parse(readFileSync(path.join(monitoring, "grafana-dashboard.json"), "utf8")) as {
    panels: Panel[];
    schemaVersion: number;
    __inputs: { name: string }[];
  };
/** Every query of the dashboard, with Grafana's `$__rate_interval` as this test's scrapes allow. */
const dashboardQueries = () =>
  dashboard().panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll("$__rate_interval", "1m") })),
  );
const metricNames = (expr: string) =>
  [...expr.matchAll(/\b(?:stakesync|ponder|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);

/** Runs a tool to its end (killed after 60 s), `input` on its stdin. */
function tool(command: string, args: string[], input?: string) {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.end(input ?? "");
  });
}

/** Lint lines of `promtool check metrics` on a /metrics text; throws on a parse error (exit 1). */
async function checkMetrics(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const { code, output } = await tool(promtool, ["check", "metrics"], text);
  const lint = output.split("\n").filter((line) => line.trim() !== "");
  if (code !== 0 && code !== 3) throw new Error(`promtool check metrics ${url}/metrics exited ${code}:\n${output}`);
  expect(code === 0).toBe(lint.length === 0);
  return lint;
}

/** `4m`, `30s`, `1h30m` in seconds. */
function seconds(duration: string) {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(n) * (units[unit as string] ?? 0);
  return total;
}

/** GitHub's anchor for a heading. */
const slug = (title: string) =>
  title
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replaceAll(" ", "-");

describe("alert rules", () => {
  it("pass promtool check rules", async () => {
    const { code, output } = await tool(promtool, ["check", "rules", path.join(monitoring, "alerts.yml")]);
    expect(output).toContain(`SUCCESS: ${alertRules().length} rules found`);
    expect(code).toBe(0);
  });

  it("pass their promtool unit tests, which make every alert fire and then resolve", async () => {
    const { code, output } = await tool(promtool, ["test", "rules", path.join(monitoring, "alerts.test.yml")]);
    expect(output).toContain("SUCCESS");
    expect(code).toBe(0);

    const { tests } = readYaml<{ tests: RuleTest[] }>("alerts.test.yml");
    const firesThenResolves = new Set<string>();
    for (const test of tests) {
      const checks = test.alert_rule_test ?? [];
      for (const fired of checks.filter((c) => (c.exp_alerts ?? []).length > 0)) {
        const resolved = checks.some(
          (c) =>
            c.alertname === fired.alertname &&
            (c.exp_alerts ?? []).length === 0 &&
            seconds(c.eval_time) > seconds(fired.eval_time),
        );
        if (resolved) firesThenResolves.add(fired.alertname);
      }
    }
    expect([...firesThenResolves].sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
  });

  it("each have a severity, a summary, a description and a runbook in the operations guide", () => {
    const guide = readFileSync(path.join(repoRoot, "docs", "operations.md"), "utf8");
    const runbooks = guide.slice(
      guide.indexOf("## Runbooks"),
      guide.indexOf("\n## ", guide.indexOf("## Runbooks") + 1),
    );
    const anchors = new Set([...runbooks.matchAll(/^### (.+)$/gm)].map((m) => slug(m[1] as string)));
    for (const rule of alertRules()) {
      expect(rule.alert).toMatch(/^Stakesync[A-Z]\w+$/);
      expect(["critical", "warning"], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const runbook = rule.annotations?.runbook_url ?? "";
      expect(runbook, rule.alert).toMatch(/^docs\/operations\.md#[a-z0-9-]+$/);
      expect([...anchors], rule.alert).toContain(runbook.split("#")[1]);
    }
  });

  it("and the example scrape config pass promtool check config", async () => {
    const { code, output } = await tool(promtool, ["check", "config", path.join(monitoring, "prometheus.yml")]);
    expect(output).toContain("is valid prometheus config file syntax");
    expect(code).toBe(0);
  });
});

describe("the Grafana dashboard", () => {
  it("takes its datasource as an input and has a query on every panel", () => {
    const board = dashboard();
    expect(board.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(board.__inputs.map((i) => i.name)).toEqual(["DS_PROMETHEUS"]);
    const datasources: unknown[] = [];
    JSON.stringify(board, (key, value) => {
      if (key === "datasource") datasources.push(value);
      return value;
    });
    expect(datasources.length).toBeGreaterThan(0);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's input variable, filled in at import
    const input = "${DS_PROMETHEUS}";
    for (const datasource of datasources) expect(datasource).toEqual({ type: "prometheus", uid: input });
    for (const panel of board.panels.filter((p) => p.type !== "row"))
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
  });
});

describe("Prometheus scraping Ponder and two sidecars", () => {
  let chain: TestChain;
  let ponderUrl: string;
  let sidecars: SidecarProcess[];
  let prometheus: RunningProcess;
  let prometheusUrl: string;
  let dir: string;

  /** The `data` of a Prometheus API answer; throws on an error answer. */
  async function api<T>(pathAndQuery: string): Promise<T> {
    const body = (await (await fetch(`${prometheusUrl}${pathAndQuery}`)).json()) as {
      status: string;
      data: T;
      error?: string;
    };
    if (body.status !== "success") throw new Error(`${pathAndQuery}: ${body.error}`);
    return body.data;
  }
  type Vector = { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  const query = (expr: string) => api<Vector>(`/api/v1/query?query=${encodeURIComponent(expr)}`);

  beforeAll(async () => {
    const stack = await startIndexedChain("monitoring_ponder");
    const { databaseUrl, env, ponder } = stack;
    chain = stack.chain;
    ponderUrl = ponder.url;
    const sidecarEnv = { ...env, PONDER_URL: ponder.url };
    sidecars = [await startSidecar(sidecarEnv), await startSidecar(sidecarEnv)];
    await waitFor(
      "one leader",
      async () => (await Promise.all(sidecars.map((s) => s.status()))).filter((s) => s.role === "leader").length === 1,
      { timeoutMs: 60_000 },
    );
    // Developers and stakes, so that the developers, events and latency series have values.
    const team = wallets(3, "monitoring");
    await sql(databaseUrl, "INSERT INTO developers (wallet_address) SELECT unnest($1::text[])", [team]);
    for (const [i, wallet] of team.entries()) await chain.vault.stakeFor(wallet, BigInt(i + 1) * 1_000_000n);
    await mine(chain, 3);
    await (sidecars[0] as SidecarProcess).waitSynced(chain, databaseUrl, "monitoring_ponder");

    // The documented config, with this run's ports, 1 s scrapes and the rules beside it.
    const config = readYaml<{
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    }>("prometheus.yml");
    const host = (url: string) => new URL(url).host;
    const targets: Record<string, [string[], string[]]> = {
      ponder: [["127.0.0.1:42069"], [host(ponder.url)]],
      "stakesync-sidecar": [["127.0.0.1:42070", "127.0.0.1:42071"], sidecars.map((s) => host(s.url))],
    };
    expect(config.scrape_configs.map((s) => s.job_name).sort()).toEqual(Object.keys(targets).sort());
    for (const scrape of config.scrape_configs) {
      const [documented, live] = targets[scrape.job_name] as [string[], string[]];
      expect(scrape.static_configs.flatMap((s) => s.targets)).toEqual(documented);
      scrape.static_configs = [{ targets: live }];
    }
    expect(config.rule_files).toEqual(["alerts.yml"]);
    config.rule_files = [path.join(monitoring, "alerts.yml")];
    config.global = { ...config.global, scrape_interval: "1s", evaluation_interval: "1s" };
    dir = mkdtempSync(path.join(tmpdir(), "stakesync-prometheus-"));
    writeFileSync(path.join(dir, "prometheus.yml"), stringify(config));

    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = run(
      prometheusBin,
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      {},
    );
    await waitFor(
      "prometheus /-/ready",
      async () => {
        await throwIfExited(prometheus, "prometheus", Infinity);
        return (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }, 300_000); // anvil, Ponder's start, two sidecars, a sync and Prometheus, on a busy machine

  afterAll(async () => {
    await cleanup(); // prometheus (SIGTERM), the sidecars, Ponder and anvil
    if (prometheus) expect(prometheus.process.exitCode ?? prometheus.process.signalCode).not.toBeNull();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("finds each sidecar's /metrics lint-clean, and Ponder's with only its known lint", async () => {
    for (const sidecar of sidecars) expect(await checkMetrics(sidecar.url)).toEqual([]);
    const ponderLint = await checkMetrics(ponderUrl);
    expect(ponderLint.filter((line) => !PONDER_LINT.includes(line))).toEqual([]);
  });

  it("scrapes all three targets, sees one leader and loads every rule healthy", async () => {
    const names = alertRules().map((r) => r.alert);
    let last = "";
    await waitFor(
      "the targets up, lag and leader series, the rules evaluated",
      async () => {
        const up = (await query("up")).result;
        const lag = (await query("stakesync_lag_blocks")).result;
        const leaders = (await query("sum(stakesync_is_leader)")).result;
        const { groups } = await api<{
          groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string }[] }[];
        }>("/api/v1/rules");
        const rules = groups.flatMap((g) => g.rules);
        // A healthy stack has no alert, not even a pending one (NoLeader is pending at Prometheus'
        // start, before its first scrape).
        const { alerts } = await api<{ alerts: { labels: { alertname: string }; state: string }[] }>("/api/v1/alerts");
        last = JSON.stringify({ up, lag, leaders, rules: rules.map((r) => [r.name, r.health, r.lastError]), alerts });
        return (
          up.length === 3 &&
          up.every((s) => s.value[1] === "1") &&
          lag.length === 2 && // one series per sidecar
          leaders[0]?.value[1] === "1" &&
          rules.length === names.length &&
          rules.every((r) => r.type === "alerting" && r.health === "ok") &&
          alerts.length === 0
        );
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nlast answers: ${last}\nprometheus log:\n${prometheus.output().slice(-3000)}`);
    });
    const { groups } = await api<{ groups: { name: string; rules: { name: string }[] }[] }>("/api/v1/rules");
    expect(groups.map((g) => g.name)).toEqual(
      readYaml<{ groups: { name: string }[] }>("alerts.yml").groups.map((g) => g.name),
    );
    expect(groups.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual([...names].sort());
  });

  it("answers every dashboard query, on metrics the stack exports", async () => {
    const queries = dashboardQueries();
    let empty: string[] = [];
    await waitFor(
      "every dashboard query with a series",
      async () => {
        empty = [];
        for (const { panel, expr } of queries) {
          const { result } = await query(expr); // throws on an error answer
          if (result.length === 0 && !metricNames(expr).some((m) => APPEAR_ON_FIRST_ERROR.includes(m)))
            empty.push(`${panel}: ${expr}`);
        }
        return empty.length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 2000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nempty: ${empty.join("\n")}`);
    });

    const used = [...new Set(queries.flatMap((q) => metricNames(q.expr)))].sort();
    // In Prometheus' scraped series.
    const scraped = new Set(await api<string[]>("/api/v1/label/__name__/values"));
    expect(used.filter((m) => !scraped.has(m) && !APPEAR_ON_FIRST_ERROR.includes(m))).toEqual([]);
    // Declared (# TYPE) on the live endpoints, those without a series yet included.
    const declared = new Set<string>();
    for (const url of [ponderUrl, ...sidecars.map((s) => s.url)]) {
      const text = await (await fetch(`${url}/metrics`)).text();
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        declared.add(name as string);
        if (type === "histogram" || type === "summary")
          for (const suffix of ["_bucket", "_sum", "_count"]) declared.add(`${name}${suffix}`);
      }
    }
    expect(used.filter((m) => !declared.has(m))).toEqual([]);
  });

  it("draws stakesync_lag_blocks on its graph page", async () => {
    // README's picture: written once, or again with UPDATE_DOCS_SCREENSHOTS=1.
    const docShot = path.join(monitoring, "prometheus-lag.png");
    const forDocs = !existsSync(docShot) || process.env.UPDATE_DOCS_SCREENSHOTS === "1";
    // For the README's picture, bursts of blocks, so that the lag has something to show: it
    // rises, and the sync catches up (12 s). The legend needs only the series, scraped already.
    for (const blocks of forDocs ? [15, 40, 25] : []) {
      await mine(chain, blocks);
      await new Promise((resolve) => setTimeout(resolve, 4000));
    }
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      // Debian's prometheus serves the classic UI (/graph redirects there, without the query).
      await page.goto(`${prometheusUrl}/classic/graph?g0.expr=stakesync_lag_blocks&g0.tab=0&g0.range_input=1m`);
      const legend = page.locator(".legend");
      await legend.getByText("stakesync_lag_blocks", { exact: false }).first().waitFor({ timeout: 60_000 });
      expect(await legend.textContent()).toMatch(/stakesync_lag_blocks\{.*chain_id=/);
      mkdirSync(artifacts, { recursive: true });
      const shot = path.join(artifacts, "prometheus-lag.png");
      await page.screenshot({ path: shot });
      if (forDocs) copyFileSync(shot, docShot);
    } finally {
      await browser.close();
    }
  });
});

/**
 * `npm run soak -- [--minutes 10] [--seed S] [--faults all|none|kind,kind]`: the whole stack
 * under traffic and faults for a while (./run.ts), then its figures: a table on stdout and
 * bench/results/soak.json. Exit 1 when an invariant was violated.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../../lib/config";
import { FAULT_KINDS, type FaultKind, runSoak } from "./run";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
    faults: { type: "string", default: "all" },
    out: { type: "string", default: path.join(repoRoot, "bench", "results", "soak.json") },
  },
});
const faults =
  values.faults === "all"
    ? [...FAULT_KINDS]
    : values.faults === "none"
      ? []
      : (values.faults.split(",") as FaultKind[]);
const unknown = faults.filter((f) => !FAULT_KINDS.includes(f));
if (unknown.length > 0 || !/^\d+(\.\d+)?$/.test(values.minutes) || !/^\d+$/.test(values.seed)) {
  process.stderr.write(
    `usage: npm run soak -- [--minutes M] [--seed S] [--faults all|none|${FAULT_KINDS.join(",")}]\n` +
      (unknown.length > 0 ? `unknown fault(s): ${unknown.join(", ")}\n` : ""),
  );
  process.exit(2);
}
const report = await runSoak({
  minutes: Number(values.minutes),
  seed: Number(values.seed),
  faults,
  log: (line) => process.stderr.write(`[soak] ${line}\n`),
});
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
const row = (a: string, b: string) => process.stdout.write(`| ${a} | ${b} |\n`);
process.stdout.write("| figure | value |\n|---|---|\n");
row("minutes, seed", `${report.minutes}, ${report.seed}`);
row("transactions sent", String(report.transactions));
row(
  "faults injected",
  Object.entries(report.faults)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none",
);
row("invariant violations", String(report.violations.length));
row(
  "faults with nothing to act on",
  Object.entries(report.idleFaults)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none",
);
row(
  "checkpoints during the run: rows compared with the model",
  `${report.checkpoints.rowsCompared} in ${report.checkpoints.runs} (${report.checkpoints.skipped} skipped)`,
);
row(
  "sync availability",
  `${report.availability.percent}% of ${report.availability.samples - report.availability.excluded} samples`,
);
row("  a deep reorg's retraction stale at once", `${report.availability.retractedAtOnce.percent}%`);
row(
  "staleness p50 / p99 / max (s)",
  `${report.stalenessSeconds.p50} / ${report.stalenessSeconds.p99} / ${report.stalenessSeconds.max}`,
);
row(
  "freshness, confirmation to developers row p50 / p99 / max (s)",
  `${report.freshnessSeconds.p50} / ${report.freshnessSeconds.p99} / ${report.freshnessSeconds.max} over ${report.freshnessSeconds.stakes} stakes`,
);
for (const [kind, r] of Object.entries(report.recoverySeconds))
  row(`recovery after ${kind} p50 / max (s)`, `${r.p50} / ${r.max}`);
for (const [kind, r] of Object.entries(report.pondersCurrentSeconds))
  row(`then both Ponders current after ${kind} p50 / max (s)`, `${r.p50} / ${r.max}`);
if (report.migrationTakeoverSeconds?.length)
  row(
    "leader frozen inside an application's migration: the other led after (s)",
    report.migrationTakeoverSeconds.map((s) => (s === null ? "not within 30 s" : String(s))).join(", "),
  );
row(
  "stale seconds by the fault before them",
  Object.entries(report.staleSecondsByFault)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none",
);
for (const [name, r] of Object.entries(report.peakRssMb))
  row(`RSS ${name} first / last fifth, peak (MB)`, `${r.firstFifth} / ${r.lastFifth}, ${r.peak}`);
for (const [name, h] of Object.entries(report.heapUsedMb))
  row(`heap used ${name} first / last fifth (MB)`, `${h.firstFifth} / ${h.lastFifth}`);
const list = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";
row(
  "faults that had to alert: alerted / faults",
  Object.entries(report.alerts.expected)
    .map(([kind, e]) => `${kind} ${e.alerted} / ${e.faults}`)
    .join(", ") || "none",
);
row("faults no rule had to report, by reason", list(report.alerts.notExpected));
row("alerts no injected fault explains", list(report.alerts.withoutFault));
row("alerts during faults that need not raise them, by fault and rule", list(report.alerts.pagedAnyway ?? {}));
for (const text of report.alerts.pagedAnywayTexts ?? []) row("  such a page", text);
const counts = Object.values(report.emailsPerDeveloper);
row("welcome emails per developer", counts.length === 0 ? "none" : `max ${Math.max(...counts)} over ${counts.length}`);
row(
  "welcome jobs waiting out the lease of a sidecar killed after claiming them",
  String(report.welcomesAwaitingKilledClaim?.length ?? 0),
);
for (const v of report.violations) process.stderr.write(`VIOLATION ${v}\n`);
process.exit(report.violations.length === 0 ? 0 : 1);

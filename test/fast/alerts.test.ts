/**
 * Alert delivery across a change of leader (sidecar/effects/alerts.ts): the rules firing are kept
 * in stakesync.alert_firing, so the next leader resolves one that cleared while it took over.
 */
import { afterEach, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { Alerts } from "../../sidecar/effects/alerts";
import { createLogger } from "../../sidecar/log";
import { createMetrics } from "../../sidecar/metrics";
import { startWebhook } from "../helpers/peers";
import { type Fake, fakePonder } from "./ponder-fake";

let fake: Fake;
let webhook: Awaited<ReturnType<typeof startWebhook>>;
afterEach(async () => {
  webhook?.close();
  await fake?.close();
});

/** One sidecar's alerts, as main.ts builds them. */
const sidecarAlerts = () =>
  new Alerts({
    webhookUrl: webhook.url,
    repeatMs: 60_000,
    retry: { attempts: 0, delayMs: 0 },
    log: createLogger("silent"),
    metrics: createMetrics([31337]),
    db: fake.db,
  });
const sent = () => webhook.alerts.map((a) => `${a.rule} ${a.state}`);

it("resolves, on the next leader, a rule the last one left firing when its condition cleared meanwhile", async () => {
  fake = await fakePonder();
  webhook = await startWebhook();
  const first = sidecarAlerts();
  await first.adopt();
  first.set("consecutive_errors", true, "critical", "5 consecutive sync errors");
  first.set("reorg_correction", true, "warning", "developers corrected after a reorg");
  await first.flush();
  // The leader loses its session: it stands down and sends nothing (the condition did not clear).
  first.standDown();

  const next = sidecarAlerts();
  await next.adopt();
  // Still firing: not sent again within ALERT_REPEAT_MS. Cleared: resolved, and forgotten.
  next.set("reorg_correction", true, "warning", "developers corrected after a reorg");
  next.set("consecutive_errors", false, "critical", "");
  await next.flush();
  await waitFor("the webhook's deliveries", () => webhook.alerts.length === 3, { timeoutMs: 10_000, intervalMs: 10 });
  expect(sent().sort()).toEqual([
    "consecutive_errors firing",
    "consecutive_errors resolved",
    "reorg_correction firing",
  ]);
  expect(next.firing().map((f) => f.rule)).toEqual(["reorg_correction"]);
  const { rows } = await fake.db.query("SELECT rule FROM stakesync.alert_firing ORDER BY rule");
  expect(rows).toEqual([{ rule: "reorg_correction" }]);
});

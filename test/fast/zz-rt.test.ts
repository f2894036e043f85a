import { afterEach, it } from "vitest";
import { type Fake, fakePonder, USDC, wallet } from "./ponder-fake";

let fake: Fake;
afterEach(async () => {
  await fake?.close();
});

it("times realtime rounds", async () => {
  fake = await fakePonder();
  await fake.db.query(`INSERT INTO developers (wallet_address, email, updated_at)
    SELECT '0x' || lpad(to_hex(1048576 + g), 40, '0'), 'o' || g || '@example.com', now() - interval '1 hour' FROM generate_series(0, 49999) g`);
  await fake.db.query("ANALYZE developers");
  const out: Record<string, number[]> = { own: [], queue: [] };
  let block = 10;
  for (let n = 0; n < 400; n++) {
    const mode = n % 2 === 0 ? "own" : "queue";
    const ws = [0, 1, 2].map((k) => wallet(0x1000 + n * 3 + k));
    for (const w of ws) await fake.register(w, "x@example.com");
    await fake.db.query("UPDATE developers SET updated_at = now() - interval '1 hour'");
    await fake.round({ writeInStep: mode === "own" }); // registrations
    await fake.index(
      ws.map((w, k) => ({ developer: w, amount: 5n * USDC, block, log: k })),
      block + 2,
    );
    block += 3;
    const t = performance.now();
    const r = await fake.round({ writeInStep: mode === "own" });
    const ms = performance.now() - t;
    if (r.changes.length !== 3) throw new Error(`changes ${r.changes.length}`);
    if (n >= 20) out[mode]?.push(ms);
  }
  for (const [k, v] of Object.entries(out)) {
    v.sort((a, b) => a - b);
    const q = (p: number) => v[Math.floor(p * (v.length - 1))]?.toFixed(2);
    console.log(k, "p50", q(0.5), "p95", q(0.95), "p99", q(0.99), "n", v.length);
  }
}, 300_000);

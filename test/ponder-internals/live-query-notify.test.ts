/**
 * Assumption: Ponder NOTIFYs channel `<schema>_live_query` when it commits a realtime block. The
 * sidecar LISTENs on it to step as soon as Ponder commits, instead of polling.
 */
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../lib/wait";
import { cleanup, listen, sql, startStack } from "./harness";

afterAll(cleanup);

describe("live-query-notify", () => {
  it('a LISTEN on "<schema>_live_query" is notified when Ponder commits a new realtime block', async () => {
    const { chain, databaseUrl, schema, developers } = await startStack();
    const listener = await listen(databaseUrl, `${schema}_live_query`);
    try {
      const receipt = await chain.vault.stakeFor(developers[1]!, 42n);
      let received = true;
      await waitFor("a notification on the live query channel", () => listener.payloads.length > 0, {
        timeoutMs: 60_000,
      }).catch(() => {
        received = false;
      });
      const indexed = await sql(databaseUrl, `SELECT 1 FROM "${schema}".stake_event WHERE transaction_hash = $1`, [
        receipt.transactionHash,
      ]);
      expect(indexed.length, "the new block's stake was indexed (else the test proves nothing)").toBe(1);
      expect(
        received,
        `assumption live-query-notify: LISTEN "${schema}_live_query" receives a NOTIFY when Ponder commits a realtime block`,
      ).toBe(true);
      console.log(`live-query-notify: payloads ${JSON.stringify(listener.payloads)}`);
    } finally {
      await listener.stop();
    }
  });
});

import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { client, eq, graphql } from "ponder";
import { isAddress } from "viem";

const app = new Hono();

app.use("/sql/*", client({ db, schema }));
app.use("/graphql", graphql({ db, schema }));

/** Net stake of one developer per chain and in total, raw uint256 amounts as decimal strings. */
app.get("/developers/:address/stake", async (c) => {
  const address = c.req.param("address");
  if (!isAddress(address, { strict: false })) {
    return c.json({ error: "address must be 0x followed by 40 hex digits" }, 400);
  }
  const rows = await db
    .select()
    .from(schema.developerStake)
    .where(eq(schema.developerStake.developer, address.toLowerCase() as `0x${string}`));
  const total = rows.reduce((sum, row) => sum + row.amount, 0n);
  return c.json({
    developer: address.toLowerCase(),
    chains: rows
      .map((row) => ({
        chainId: row.chain_id,
        amount: row.amount.toString(),
        eventCount: row.event_count,
        lastEventBlock: row.last_event_block.toString(),
      }))
      .sort((a, b) => a.chainId - b.chainId),
    total: total.toString(),
  });
});

export default app;

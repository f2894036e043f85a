/**
 * `npm run deploy -- --rpc-url URL [--private-key KEY]`: deploys MockUSDC and StakeVault from the
 * committed artifacts and prints one JSON line: {"chainId","stakeVault","token","blockNumber"}.
 * Without --private-key it uses anvil's first default account (local chains only).
 */
import { parseArgs } from "node:util";
import { isHex } from "viem";
import { ANVIL_DEPLOYER_KEY, connect, deploy } from "../lib/contracts";

function fail(message: string): never {
  process.stderr.write(`deploy: ${message}\n`);
  process.exit(1);
}

let values: { "rpc-url"?: string; "private-key"?: string };
try {
  ({ values } = parseArgs({ options: { "rpc-url": { type: "string" }, "private-key": { type: "string" } } }));
} catch (error) {
  fail((error as Error).message);
}
const rpcUrl = values["rpc-url"];
if (!rpcUrl || !/^https?:\/\//.test(rpcUrl)) fail("--rpc-url is required: an http(s) JSON-RPC URL");
const key = values["private-key"] ?? ANVIL_DEPLOYER_KEY;
if (!isHex(key) || key.length !== 66) fail("--private-key must be 0x followed by 64 hex digits");

try {
  const deployment = await deploy(await connect(rpcUrl, key));
  process.stdout.write(`${JSON.stringify(deployment)}\n`);
} catch (error) {
  fail((error as Error).message.split("\n")[0] ?? "failed");
}

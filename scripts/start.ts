/**
 * `npm start` (production): `ponder start` and the sidecar (scripts/start-stack.ts), configured
 * only by the real environment. `npm run start:indexer` / `start:sidecar` run one of them.
 *
 * The Node.js check is its only static import, the rest comes after it: a module's static imports
 * are all linked before any of its code runs, and on an older Node.js one of them fails to link
 * (node:util's parseEnv is not in Node.js 18) with a stack trace instead of the check's one line.
 */
import "../lib/require-node.mjs";

await import("./start-stack");

/**
 * Run first by every entry point, before anything else is loaded: one line saying what to
 * install on a Node.js the stack does not run on, not a stack trace later. Plain JavaScript, so
 * that bin/stakesync.js runs it before it loads tsx.
 *
 * 22.15: Ponder 0.17 needs 22, and a dependency of its GraphQL server (@whatwg-node/promise-helpers)
 * 22.15; test/fast/package.test.ts holds it to every production dependency's `engines`.
 */
export const MINIMUM_NODE = "22.15.0";

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
const [minMajor = 0, minMinor = 0] = MINIMUM_NODE.split(".").map(Number);
if (major < minMajor || (major === minMajor && minor < minMinor)) {
  process.stderr.write(
    `stakesync: Node.js ${process.versions.node} is too old: install Node.js ${minMajor}.${minMinor} or newer (24 LTS recommended)\n`,
  );
  process.exit(1);
}

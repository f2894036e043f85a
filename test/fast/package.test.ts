/**
 * What package.json promises a machine: the Node.js it asks for is one every production
 * dependency runs on, and npm approves every install script the lockfile holds (npm 11 warns of
 * unapproved ones and is to skip them: the embedded PostgreSQL of another platform would then
 * lack the links to its libraries, and `npm run dev` and `npm test` fail there).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import semver from "semver";
import { expect, it } from "vitest";
import { repoRoot } from "../../lib/config";

const read = (file: string) => JSON.parse(readFileSync(path.join(repoRoot, file), "utf8"));
const pkg = read("package.json") as { engines: { node: string }; allowScripts: Record<string, boolean> };
type Locked = { version: string; dev?: boolean; engines?: { node?: string }; hasInstallScript?: boolean };
const locked = Object.entries(read("package-lock.json").packages as Record<string, Locked>)
  .filter(([at]) => at !== "")
  .map(([at, entry]) => ({ name: at.slice(at.lastIndexOf("node_modules/") + "node_modules/".length), ...entry }));

it("asks for a Node.js every production dependency runs on, the one the entry points check", async () => {
  const { MINIMUM_NODE } = (await import(pathToFileURL(path.join(repoRoot, "lib", "require-node.mjs")).href)) as {
    MINIMUM_NODE: string;
  };
  expect(semver.minVersion(pkg.engines.node)?.version, "package.json engines.node").toBe(MINIMUM_NODE);
  const refused = locked
    .filter((p) => !p.dev && p.engines?.node && !semver.satisfies(MINIMUM_NODE, p.engines.node))
    .map((p) => `${p.name}@${p.version} wants ${p.engines?.node}`);
  expect(refused, `production dependencies that do not run on Node.js ${MINIMUM_NODE}`).toEqual([]);
});

it("approves every install script in the lockfile, for every platform", () => {
  const unapproved = locked.filter((p) => p.hasInstallScript && pkg.allowScripts[p.name] !== true).map((p) => p.name);
  expect([...new Set(unapproved)], "install scripts package.json's allowScripts does not approve").toEqual([]);
});

/**
 * The resolve hook Ponder's process loads (lib/esm-scope-cache.mjs) answers the imports it
 * answers as Node would, and leaves every other case, errors included, to Node: the same
 * program run with and without it prints the same outcomes.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";
import { repoRoot } from "../../lib/config";

const hook = pathToFileURL(path.join(repoRoot, "lib", "esm-scope-cache.mjs")).href;
const root = mkdtempSync(path.join(tmpdir(), "stakesync-esm-scope-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(file: string, text: string) {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), text);
}

/** A package in node_modules with each case the hook must answer, or leave to Node. */
function fixture() {
  const pkg = "node_modules/esm-pkg";
  // An exports map like viem's: what Node materializes again for every import it resolves.
  const exports = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`./e${i}`, `./e${i}.js`]));
  write(`${pkg}/package.json`, JSON.stringify({ name: "esm-pkg", type: "module", exports }));
  write(`${pkg}/a.js`, `export const a = "a"; export const url = import.meta.url;`);
  write(`${pkg}/real.cjs`, `module.exports = { cjs: true };`);
  symlinkSync(path.join(root, pkg, "real.cjs"), path.join(root, pkg, "cjs-link.js"));
  write(`${pkg}/back\\slash.js`, `export const slash = "\\";`);
  mkdirSync(path.join(root, pkg, "badutf"));
  writeFileSync(
    path.join(root, pkg, "badutf/package.json"),
    Buffer.concat([Buffer.from('{"type":"module","description":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
  );
  write(`${pkg}/badutf/g.js`, `export const g = "g";`);
  write(`${pkg}/sub/b.js`, `export { a } from "../a.js"; export const b = "b";`);
  write(`${pkg}/real/c.js`, `export const url = import.meta.url;`);
  symlinkSync(path.join(root, pkg, "real"), path.join(root, pkg, "link"));
  write(`${pkg}/cjs/package.json`, JSON.stringify({ type: "commonjs" }));
  write(`${pkg}/cjs/d.js`, `module.exports = { d: "d" };`);
  write(`${pkg}/untyped/package.json`, JSON.stringify({ name: "untyped" }));
  write(`${pkg}/untyped/f.js`, `export const f = "f";`);
  write(`${pkg}/bad/package.json`, "{ not json");
  write(`${pkg}/bad/e.js`, `export const e = "e";`);
  mkdirSync(path.join(root, pkg, "folder.js"));
  write(
    `${pkg}/index.js`,
    `
const outcome = async (specifier) => {
  try {
    const m = await import(specifier);
    return { ok: Object.keys(m).sort().join(","), url: m.url?.replace(${JSON.stringify(pathToFileURL(root).href)}, "<root>") };
  } catch (error) {
    return { error: error.code ?? error.name };
  }
};
const results = {};
for (const s of ["./a.js", "./sub/b.js", "./real/c.js", "./link/c.js", "./cjs/d.js", "./untyped/f.js", "./bad/e.js",
  "./missing.js", "./folder.js", "./a", "../esm-pkg/a.js", "./cjs-link.js", "./a.js?v=1.js", "./a.js#h.js",
  "./back%5Cslash.js", "./badutf/g.js"]) results[s] = await outcome(s);
results.sameThroughLink = (await import("./link/c.js")) === (await import("./real/c.js"));
results.queryIsAnother = (await import("./a.js?v=1.js")) !== (await import("./a.js"));
const { b, a } = await import("./sub/b.js");
results.reexport = a + b;
export default results;
`,
  );
  write(
    "main.mjs",
    `import results from "./node_modules/esm-pkg/index.js";
const stats = process.env.WITH_HOOK ? (await import(${JSON.stringify(hook)})).esmScopeCacheStats : undefined;
console.log(JSON.stringify({ results, stats }));`,
  );
}

function runMain(withHook: boolean, flags: string[] = []) {
  const args = [...flags, ...(withHook ? ["--import", hook] : []), "main.mjs"];
  const out = execFileSync(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...(withHook ? { WITH_HOOK: "1" } : {}) },
    encoding: "utf8",
  });
  return JSON.parse(out) as { results: Record<string, unknown>; stats?: { answered: number } };
}

it("resolves as Node does, errors included, and answers the relative .js imports of an ES package itself", () => {
  fixture();
  const without = runMain(false);
  const withHook = runMain(true);
  expect(withHook.results).toEqual(without.results);
  // The fixture covers what it means to: a symlink read through to one module, each error Node gives.
  expect(without.results).toMatchObject({
    "./link/c.js": { url: "<root>/node_modules/esm-pkg/real/c.js" },
    sameThroughLink: true,
    "./cjs/d.js": { ok: expect.stringContaining("default") },
    "./missing.js": { error: "ERR_MODULE_NOT_FOUND" },
    "./folder.js": { error: "ERR_UNSUPPORTED_DIR_IMPORT" },
    "./bad/e.js": { error: "ERR_INVALID_PACKAGE_CONFIG" },
    "./badutf/g.js": { error: "ERR_INVALID_PACKAGE_CONFIG" },
    "./cjs-link.js": { ok: expect.stringContaining("default") }, // a .js name for a CommonJS file
    "./a.js?v=1.js": { url: "<root>/node_modules/esm-pkg/a.js?v=1.js" },
    "./a.js#h.js": { url: "<root>/node_modules/esm-pkg/a.js#h.js" },
    "./back%5Cslash.js": { error: "ERR_INVALID_MODULE_SPECIFIER" },
    queryIsAnother: true,
    reexport: "ab",
  });
  // With --preserve-symlinks Node keeps the link's path; the hook then stays out.
  const preserved = runMain(false, ["--preserve-symlinks"]);
  expect(preserved.results["./link/c.js"]).toEqual({ ok: "url", url: "<root>/node_modules/esm-pkg/link/c.js" });
  expect(runMain(true, ["--preserve-symlinks"]).results).toEqual(preserved.results);
  // Answered by the hook: ./a.js, ./sub/b.js, ./real/c.js, ./link/c.js, ../a.js, ../esm-pkg/a.js.
  expect(withHook.stats?.answered).toBeGreaterThanOrEqual(6);
});

/**
 * Loaded into Ponder's process with `--import` (lib/local/process.ts, ponderCommand): a module
 * resolve hook that gives a relative `import "./x.js"` its format from a per-directory cache.
 *
 * Why: for every import it resolves, Node works out the module's format by finding the nearest
 * package.json and materializing it again, exports map and all (Node 24's getPackageScopeConfig).
 * Ponder's start resolves about ten thousand imports, most of them relative ones inside viem,
 * kysely, graphql and drizzle, so a `ponder start` spent 0.9 s of its 6 s of CPU there before it
 * was ready. With this hook it spends about 0.1 s.
 *
 * Where this hook answers, it answers what Node would: the file's real path (symlinks followed),
 * format "module" because the nearest package.json says `"type": "module"`. It answers only when
 * all of these hold, and otherwise Node resolves the import itself, errors and all:
 * - the import comes from an ES module in a file;
 * - the specifier starts with ./ or ../ and ends in .js;
 * - the target is a file that exists;
 * - its package scope reads `"type": "module"`.
 * Node has had module.registerHooks since 22.15; on an older Node 22 this file does nothing.
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import * as nodeModule from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

/** How many imports this hook answered, and how many it left to Node (read by its test). */
export const esmScopeCacheStats = { answered: 0, passed: 0 };

/** Directory (file URL, ending in "/") → "type" of its package scope: "module", "commonjs", "none" or "invalid". */
const scopeTypes = new Map();

/** The "type" of the package scope of `directory`: its nearest package.json, as Node looks for it. */
function scopeType(directory) {
  const visited = [];
  let type;
  for (let dir = directory; ; ) {
    const known = scopeTypes.get(dir);
    if (known !== undefined) {
      type = known;
      break;
    }
    visited.push(dir);
    // Node stops at a node_modules directory: the scope of node_modules/x.js is none.
    if (dir.endsWith("/node_modules/")) {
      type = "none";
      break;
    }
    const text = readIfExists(new URL("package.json", dir));
    if (text !== undefined) {
      type = parsedType(text);
      break;
    }
    const parent = new URL("..", dir).href;
    if (parent === dir) {
      type = "none";
      break;
    }
    dir = parent;
  }
  for (const dir of visited) scopeTypes.set(dir, type);
  return type;
}

function readIfExists(url) {
  try {
    return readFileSync(url, "utf8");
  } catch {
    return undefined;
  }
}

function parsedType(text) {
  try {
    const type = JSON.parse(text).type;
    return type === "module" || type === "commonjs" ? type : "none";
  } catch {
    return "invalid"; // Node reports this package.json itself
  }
}

/** The real path of a file that exists, as a file URL; undefined for anything else. */
function realFile(url) {
  try {
    const file = fileURLToPath(url);
    if (!statSync(file).isFile()) return undefined;
    return pathToFileURL(realpathSync.native(file)).href;
  } catch {
    return undefined;
  }
}

function resolve(specifier, context, nextResolve) {
  if (
    (specifier.startsWith("./") || specifier.startsWith("../")) &&
    specifier.endsWith(".js") &&
    context.parentURL?.startsWith("file:") &&
    context.conditions?.includes("import")
  ) {
    const url = realFile(new URL(specifier, context.parentURL));
    if (url !== undefined && scopeType(new URL(".", url).href) === "module") {
      esmScopeCacheStats.answered++;
      return { url, format: "module", shortCircuit: true };
    }
  }
  esmScopeCacheStats.passed++;
  return nextResolve(specifier, context);
}

if (typeof nodeModule.registerHooks === "function") nodeModule.registerHooks({ resolve });

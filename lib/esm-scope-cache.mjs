/**
 * Loaded into Ponder's process with `--import` (lib/local/process.ts, ponderCommand): a module
 * resolve hook that gives a relative `import "./x.js"` its format from a per-directory cache.
 *
 * Why: for every `.js` file it resolves, Node 24 works out the module's format from the nearest
 * package.json, and in doing so parses that package.json's exports map again (getPackageScopeConfig
 * copies the cached entry, whose exports are parsed lazily). drizzle-orm's package.json has 439
 * exports in 128 KB, 2.5 ms a parse, and Ponder's start resolves hundreds of drizzle-orm's files
 * among its ~2,700 relative imports: a `ponder start` spent 0.9 s of its 6 s of CPU there before
 * it was ready. With this hook it spends about 0.1 s.
 *
 * Where this hook answers, it answers what Node would: the file's real path (symlinks followed),
 * format "module" because the nearest package.json says `"type": "module"`. It answers only when
 * all of these hold, and otherwise Node resolves the import itself, errors and all:
 * - the import comes from a file (an ES module's import or import());
 * - the specifier starts with ./ or ../, ends in .js, and has no ?, # or % (no query, hash or
 *   encoded character, which Node keeps or checks);
 * - the import has no attributes (`with { type: ... }`);
 * - the target is a file that exists, and its real path ends in .js too;
 * - its package scope reads `"type": "module"`, in a package.json that is valid UTF-8 JSON;
 * - node runs without --preserve-symlinks (then the hook is not installed).
 * A loader registered later with module.register would not see the imports this hook answers;
 * Ponder registers none. Node has had module.registerHooks since 22.15, the oldest Node.js the
 * entry points accept (lib/require-node.mjs).
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import * as nodeModule from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

/** How many imports this hook answered (read by its test). */
export const esmScopeCacheStats = { answered: 0 };

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

/** The file's bytes as text; null when they are not valid UTF-8 (Node refuses such a package.json). */
function readIfExists(url) {
  let bytes;
  try {
    bytes = readFileSync(url);
  } catch {
    return undefined;
  }
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
const utf8 = new TextDecoder("utf-8", { fatal: true });

function parsedType(text) {
  if (text === null) return "invalid";
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
    const real = realpathSync.native(file);
    return real.endsWith(".js") ? pathToFileURL(real).href : undefined;
  } catch {
    return undefined;
  }
}

function resolve(specifier, context, nextResolve) {
  if (
    (specifier.startsWith("./") || specifier.startsWith("../")) &&
    specifier.endsWith(".js") &&
    !/[?#%]/.test(specifier) &&
    context.parentURL?.startsWith("file:") &&
    context.conditions?.includes("import") &&
    Object.keys(context.importAttributes ?? {}).length === 0
  ) {
    const url = realFile(new URL(specifier, context.parentURL));
    if (url !== undefined && scopeType(new URL(".", url).href) === "module") {
      esmScopeCacheStats.answered++;
      return { url, format: "module", shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

const preserveSymlinks = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) =>
  arg.startsWith("--preserve-symlinks"),
);
if (typeof nodeModule.registerHooks === "function" && !preserveSymlinks) nodeModule.registerHooks({ resolve });

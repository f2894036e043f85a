/**
 * `--import`ed before an entry point: the process looks like Node.js 18.19 (Debian 12's and
 * Ubuntu 24.04's own), whose node:util has no parseEnv. An entry point must refuse it with its one
 * line before a module of the repository's is linked: one that imports parseEnv fails to link.
 */
import { register } from "node:module";

Object.defineProperty(process.versions, "node", { value: "18.19.0" });
const names = Object.keys(await import("node:util")).filter((name) => name !== "default" && name !== "parseEnv");
const source = `const util = process.getBuiltinModule("node:util");
export default util;
export const { ${names.join(", ")} } = util;`;
const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === "node:util" || specifier === "util") return { url: "old-node:util", shortCircuit: true };
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url === "old-node:util") return { format: "module", source: ${JSON.stringify(source)}, shortCircuit: true };
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

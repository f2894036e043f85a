/**
 * What the sidecar's bundle (dist/sidecar.mjs, see sidecarCommand) loads from node_modules when
 * it starts: the packages `npm ci --omit=dev` installs, and no viem.
 */
import { readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { describe, expect, it } from "vitest";
import { sidecarCommand } from "../../lib/local/process";
import packageJson from "../../package.json" with { type: "json" };

/**
 * The packages the bundle imports at run time: `from "x"`, `import "x"`, `import("x")`, and the
 * `__require("x")` esbuild writes for a bundled CommonJS module's require; Node's own left out.
 */
function importedPackages(bundle: string): string[] {
  const specifiers = [
    ...bundle.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s*|\b(?:__)?require\(\s*)"([^"./#][^"]*)"/gm),
  ].map((m) => m[1] ?? "");
  const packages = specifiers
    .filter((s) => !isBuiltin(s))
    .map((s) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : (s.split("/")[0] ?? s)));
  return [...new Set(packages)].sort();
}

describe("the sidecar's bundle", () => {
  it("imports only production dependencies, and viem's one function is inside it", async () => {
    const args = await sidecarCommand();
    const bundlePath = args.find((a) => a.endsWith("sidecar.mjs"));
    expect(bundlePath, "sidecarCommand built no bundle").toBeDefined();
    const bundle = readFileSync(bundlePath as string, "utf8");
    const imported = importedPackages(bundle);
    // A package installed for development only is missing where production runs `npm ci --omit=dev`.
    const production = Object.keys(packageJson.dependencies);
    expect(imported.filter((p) => !production.includes(p))).toEqual([]);
    // Importing viem's index costs a process 36 MB of resident memory for formatUnits alone.
    expect(imported).not.toContain("viem");
    expect(imported).not.toContain("abitype");
    expect(imported).not.toContain("@noble/hashes"); // viem's, for isAddress (lib/config.ts)
    expect(imported).toEqual(expect.arrayContaining(["hono", "pg", "pino", "prom-client", "zod"]));
    // esbuild may rename it (formatUnits2) when a name is taken.
    expect(bundle).toMatch(/function formatUnits\d*\(/);
  });
});

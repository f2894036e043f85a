/** One embedded PostgreSQL for the whole run; each test file makes its own database in it. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { type LocalPostgres, startPostgres } from "../../lib/local/postgres";
import { freePort } from "../../lib/ports";

declare module "vitest" {
  export interface ProvidedContext {
    postgresPort: number;
  }
}

let postgres: LocalPostgres | undefined;
let dir: string | undefined;

export async function setup(project: TestProject) {
  dir = mkdtempSync(path.join(tmpdir(), "stakesync-test-pg-"));
  postgres = await startPostgres({
    dataDir: path.join(dir, "data"),
    port: await freePort(),
    database: "stakesync_test",
    ephemeral: true,
  });
  project.provide("postgresPort", postgres.port);
}

export async function teardown() {
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

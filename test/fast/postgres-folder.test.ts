/** The local PostgreSQL opens its data folder's parent to the `postgres` user without closing anything. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { openToOthers } from "../../lib/local/postgres";

const root = mkdtempSync(path.join(tmpdir(), "stakesync-pg-folder-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (dir: string) => statSync(dir).mode & 0o7777;

it("keeps a shared folder's sticky and write bits (as /tmp's 1777)", () => {
  chmodSync(root, 0o1777);
  openToOthers(root);
  expect(mode(root).toString(8)).toBe("1777");
});

it("opens a private folder to others for reading and entering", () => {
  const dir = path.join(root, "private");
  mkdirSync(dir);
  chmodSync(dir, 0o700);
  openToOthers(dir);
  expect(mode(dir).toString(8)).toBe("755");
});

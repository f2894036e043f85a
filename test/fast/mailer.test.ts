/**
 * The welcome's Message-ID (sidecar/effects/mailer.ts): the same for a developer whatever sends
 * it, so that a resend after a crash is a duplicate the receiving server can drop.
 */
import { expect, it } from "vitest";
import { loadSidecarConfig } from "../../lib/config";
import { welcomeMessageId } from "../../sidecar/effects/mailer";
import { writtenSettings } from "../../sidecar/settings";

const w = "0x00000000000000000000000000000000000000aB";

it("takes the Message-ID's domain from MAIL_FROM's address, whatever its display name holds", () => {
  const id = `<welcome.${w.toLowerCase()}@stakesync.io>`;
  for (const from of [
    "noreply@stakesync.io",
    "Stakesync <noreply@stakesync.io>",
    // A display name with an "@" of its own gave `<welcome.0x…@stakesync.io">`, no valid Message-ID.
    '"noreply@stakesync.io" <noreply@stakesync.io>',
    '"team@other.example" <noreply@stakesync.io>',
    "noreply@stakesync.io (Stakesync)",
  ]) {
    expect(welcomeMessageId(w, from), from).toBe(id);
  }
});

it("tells two sidecars whose MAIL_FROM gives another Message-ID apart (settings_differ), not two that only name it otherwise", () => {
  const env = {
    DATABASE_URL: "postgresql://localhost/x",
    STAKE_VAULT_ADDRESS: "0x0000000000000000000000000000000000000001",
    CHAIN_ID: "31337",
    RPC_URL: "http://127.0.0.1:8545",
    SMTP_URL: "smtp://localhost:2525",
  };
  const settings = (from: string) =>
    writtenSettings(loadSidecarConfig({ ...env, MAIL_FROM: from } as NodeJS.ProcessEnv)).MAIL_FROM;
  expect(settings("Stakesync <noreply@stakesync.io>")).toBe(settings("noreply@stakesync.io"));
  expect(settings("noreply@mail.stakesync.io")).not.toBe(settings("noreply@stakesync.io"));
});

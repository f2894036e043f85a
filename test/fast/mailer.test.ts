/**
 * The welcome's Message-ID (sidecar/effects/mailer.ts): the same for a developer whatever sends
 * it, so that a resend after a crash is a duplicate the receiving server can drop.
 */
import { createServer } from "node:net";
import { expect, it, vi } from "vitest";
import { loadSidecarConfig } from "../../lib/config";
import { freePort } from "../../lib/ports";
import { createMailer, welcomeMessageId } from "../../sidecar/effects/mailer";
import { temporary } from "../../sidecar/effects/worker";
import { writtenSettings } from "../../sidecar/settings";
import { startSmtp } from "../helpers/peers";

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

it("keeps nodemailer's own logger off and the send's limits its own, whatever SMTP_URL's query says; the config refuses such a query", async () => {
  const smtp = await startSmtp();
  smtp.state.rejected.add("dave@example.test");
  // nodemailer's logger writes through console: every line it would print is caught here.
  const printed: string[] = [];
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(" "));
    }),
  );
  try {
    // As passed as `url`, the query's options won over the sidecar's: ?logger=true printed
    // "Sending message … to <dave@example.test>" and the server's refusal quoting it.
    const mailer = createMailer(`${smtp.url}/?logger=true&debug=true&socketTimeout=1`, "noreply@stakesync.io");
    await expect(mailer.send("dave@example.test", w)).rejects.toThrow(/550/);
    await mailer.send("erin@example.test", w); // and a socketTimeout of 1 ms did not cut it off
    mailer.close();
  } finally {
    for (const spy of spies) spy.mockRestore();
    await smtp.close();
  }
  expect(smtp.mails.map((m) => m.to)).toEqual([["erin@example.test"]]);
  expect(printed.filter((line) => line.includes("@example.test"))).toEqual([]);

  const env = {
    DATABASE_URL: "postgresql://localhost/x",
    STAKE_VAULT_ADDRESS: "0x0000000000000000000000000000000000000001",
    CHAIN_ID: "31337",
    RPC_URL: "http://127.0.0.1:8545",
    MAIL_FROM: "noreply@stakesync.io",
  } as NodeJS.ProcessEnv;
  for (const query of ["logger=true", "pool=true", "jsonTransport=true", "socketTimeout=1"]) {
    expect(() => loadSidecarConfig({ ...env, SMTP_URL: `smtps://u:secret@mail.example.com/?${query}` }), query).toThrow(
      new RegExp(`^SMTP_URL: expected no query option but tls\\.\\* and secure, .*got \\?${query.split("=")[0]}:`),
    );
  }
  // The connection's own are taken.
  expect(
    loadSidecarConfig({
      ...env,
      SMTP_URL: "smtp://mail.example.com:465/?secure=true&tls.rejectUnauthorized=false&name=relay.local",
    }).smtpUrl,
  ).toContain("secure=true&tls.rejectUnauthorized=false");
});

it("tells the SMTP failures that are temporary (4xx, no server reached) from those that are not, as nodemailer reports them", async () => {
  const smtp = await startSmtp();
  smtp.state.rejected.add("dave@example.test");
  const failure = async (url: string, to = "erin@example.test") => {
    const mailer = createMailer(url, "noreply@stakesync.io");
    try {
      return await mailer.send(to, w).then(
        () => undefined,
        (error: unknown) => error,
      );
    } finally {
      mailer.close();
    }
  };
  try {
    smtp.state.failing = true; // 451 to the message
    expect(temporary(await failure(smtp.url))).toBe(true);
    smtp.state.failing = false;
    expect(temporary(await failure(smtp.url, "dave@example.test"))).toBe(false); // 550 at RCPT
    const closed = `smtp://127.0.0.1:${await freePort()}`;
    expect(temporary(await failure(closed))).toBe(true); // nothing listens
    // A server that took the message and closed before its answer: nodemailer says "Connection
    // closed unexpectedly", as for one closed before its greeting. Counted: retried uncounted,
    // each try delivered another copy, every minute for good.
    const dropping = await dropAfterData();
    expect(temporary(await failure(dropping.url))).toBe(false);
    await dropping.close();
  } finally {
    await smtp.close();
  }
  expect(temporary(new Error("the SMTP server took more than 240 s over one message"))).toBe(false);
});

/** An SMTP peer that takes the whole message, then drops the connection before answering it. */
async function dropAfterData() {
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.write("220 drop.test ESMTP\r\n");
    let data = false;
    let rest = "";
    socket.on("data", (chunk) => {
      const lines = (rest + chunk.toString()).split("\r\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        if (data) {
          if (line === ".") socket.destroy();
          continue;
        }
        if (/^DATA/i.test(line)) {
          data = true;
          socket.write("354 go on\r\n");
        } else socket.write("250 ok\r\n");
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { url: `smtp://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

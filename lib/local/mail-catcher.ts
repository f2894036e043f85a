/**
 * The dev stack's SMTP server: accepts every message on loopback, keeps it as an .eml file and
 * tells the caller, so `npm run dev` shows welcome emails without a real mail server. smtp-server
 * (nodemailer's own project) speaks the protocol; this file only stores.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SMTPServer } from "smtp-server";

export type CaughtMail = { subject: string; wallet: string | undefined; file: string };

export async function startMailCatcher(options: { port: number; dir: string; onMail: (mail: CaughtMail) => void }) {
  mkdirSync(options.dir, { recursive: true });
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString();
        const wallet = raw.match(/^Wallet: (0x[0-9a-fA-F]{40})/m)?.[1];
        count += 1;
        const file = path.join(options.dir, `${Date.now()}-${count}-${wallet ?? "mail"}.eml`);
        writeFileSync(file, raw);
        const subject = raw.match(/^Subject: (.*)$/m)?.[1]?.trim() ?? "(no subject)";
        options.onMail({ subject, wallet, file });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  return {
    url: `smtp://127.0.0.1:${options.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

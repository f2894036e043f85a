/** The welcome email, through nodemailer to SMTP_URL. */
import { createTransport, type Transporter } from "nodemailer";

export type Mailer = { send: (to: string, wallet: string) => Promise<void>; close: () => void };

/**
 * The Message-ID depends only on the developer, so if a crash makes us send twice (after the
 * server accepted, before we recorded it) the receiving side can drop the duplicate.
 */
export function welcomeMessageId(wallet: string, from: string) {
  const domain = from.match(/@([^>\s]+)/)?.[1] ?? "stakesync.invalid";
  return `<welcome.${wallet.toLowerCase()}@${domain}>`;
}

export function createMailer(smtpUrl: string, from: string): Mailer {
  // Short timeouts: a hung SMTP server must fail the job (and back it off), not stall the worker;
  // they also bound one send (about 150 s at worst), which the outbox lease must outlast.
  const transport: Transporter = createTransport({
    url: smtpUrl,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    send: async (to, wallet) => {
      await transport.sendMail({
        from,
        to,
        subject: "Welcome to stakesync: your account is active",
        messageId: welcomeMessageId(wallet, from),
        text: [
          "Your stake has been confirmed on chain and your developer account is now active.",
          "",
          `Wallet: ${wallet}`,
          "",
          "Keep your stake at or above the minimum to stay active.",
        ].join("\n"),
      });
    },
    close: () => transport.close(),
  };
}

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

/** nodemailer's limits on silence: connecting (DNS included), the greeting, then each answer. */
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 20_000;

/**
 * The longest one send may take, end to end; then its connection is closed and the job fails
 * (and backs off). nodemailer's own timeouts are for silence: a server that trickles its answers
 * (a line every few seconds, as a tarpit does) never trips them, and a send that outlasted the
 * outbox's lease (outbox.ts, LEASE_MS) would be claimed and sent a second time meanwhile.
 * Longer than any send those timeouts let through otherwise (connect and greeting, then about
 * ten commands with TLS and AUTH, each answered just before 20 s of silence: 220 s), since a
 * send cut off after the message's final "." may have been delivered, and would go out again
 * at the retry: only a server that trickles its answers meets this deadline.
 */
export const SEND_DEADLINE_MS = 240_000;

export function createMailer(smtpUrl: string, from: string, deadlineMs = SEND_DEADLINE_MS): Mailer {
  // Short timeouts: a hung SMTP server must fail the job (and back it off), not stall the worker.
  const transport: Transporter = createTransport({
    url: smtpUrl,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  });
  return {
    send: async (to, wallet) => {
      const deadline = AbortSignal.timeout(deadlineMs);
      await transport
        .sendMail({
          signal: deadline,
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
        })
        .catch((error: unknown) => {
          if (!deadline.aborted) throw error;
          throw new Error(
            `the SMTP server took more than ${deadlineMs / 1000} s over one message (answering, but too slowly); the connection was closed`,
          );
        });
    },
    close: () => transport.close(),
  };
}

/** The welcome email, through nodemailer to SMTP_URL. */

import { createTransport, type Transporter } from "nodemailer";
import addressparser from "nodemailer/lib/addressparser";
import { parseConnectionUrl } from "nodemailer/lib/shared";

export type Mailer = { send: (to: string, wallet: string) => Promise<void>; close: () => void };

/**
 * The Message-ID depends only on the developer, so if a crash makes us send twice (after the
 * server accepted, before we recorded it) the receiving side can drop the duplicate.
 */
export function welcomeMessageId(wallet: string, from: string) {
  return `<welcome.${wallet.toLowerCase()}@${messageIdDomain(from)}>`;
}

/**
 * The domain of MAIL_FROM's address, as nodemailer parses it (the address, not a display name
 * that holds an "@" too: `"noreply@a.io" <noreply@a.io>` gave `<welcome.0x…@a.io">`, a
 * Message-ID a receiving server may replace, and the duplicate then goes through).
 */
export function messageIdDomain(from: string) {
  const address = addressparser(from, { flatten: true })
    .map((a) => a.address)
    .findLast((a) => a.includes("@"));
  return address?.slice(address.lastIndexOf("@") + 1) || "stakesync.invalid";
}

/**
 * nodemailer's limits on silence while nothing can have been delivered: connecting (DNS
 * included), then the server's greeting. After that one limit covers every answer, the one to the
 * message's final "." too, and RFC 5321 (4.5.3.2.6) asks a client to wait 10 minutes for that
 * one: a server that took the message and is slow to say so (scanning it first) would otherwise
 * have it sent again at every retry. So the wait for any later answer is the send's deadline.
 */
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;

/**
 * The longest one send may take, end to end; then its connection is closed and the job fails
 * (and backs off). A server that goes silent after its greeting, or trickles its answers (a
 * line every few seconds, as a tarpit does), is cut off here; a send that outlasted the outbox's
 * lease (outbox.ts, LEASE_MS) would be claimed and sent a second time meanwhile. Since a send cut
 * off after the message's final "." may have been delivered, and would go out again at the
 * retry, it is as long as the lease allows with room: 4 minutes.
 */
export const SEND_DEADLINE_MS = 240_000;

export function createMailer(smtpUrl: string, from: string, deadlineMs = SEND_DEADLINE_MS): Mailer {
  // A server that is down or does not greet fails the job at once (and backs it off); one that
  // greeted is waited for up to the deadline, whose error below says what happened.
  // The URL parsed here and the sidecar's options given after it: passed as `url`, nodemailer
  // lets the URL's query override them (config.ts refuses such a query; this holds whatever the
  // caller). Its own logger stays off: it prints recipients' addresses.
  const transport: Transporter = createTransport({
    ...parseConnectionUrl(smtpUrl),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: deadlineMs + 1000,
    logger: false,
    debug: false,
    transactionLog: false,
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

/**
 * Error text from outside (an SMTP server's reply, a trigger's message) can carry a developer's
 * email address: `550 5.1.1 <dave@example.test>: Recipient address rejected`. Everything such
 * text reaches (logs, `last_error`, HTTP answers) gets it through here first.
 */
const EMAIL = /(?:"[^"\r\n]*"|[^\s<>()[\]"',;:]+)@[^\s<>()[\]"',;:]+/g; // a quoted local part too: "dave smith"@…

export function redact(text: string): string {
  return text.replace(EMAIL, "<address>");
}

/** The first line of an error's message, redacted and bounded: what may be shown and stored. */
export function errorText(error: unknown, max = 500): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const line = redact(message.split("\n")[0] ?? "").slice(0, max);
  return typeof code === "string" && code.length > 0 && !line.startsWith(code) ? `${code}: ${line}` : line;
}

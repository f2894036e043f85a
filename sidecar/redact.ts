/**
 * Error text from outside (an SMTP server's reply, a trigger's message) can carry a developer's
 * email address: `550 5.1.1 <dave@example.test>: Recipient address rejected`. Everything such
 * text reaches (logs, `last_error`, HTTP answers) gets it through here first.
 */
// Whatever surrounds an @ up to a space or an angle bracket: an address may hold characters a
// stricter pattern stops at (o'brien@…, dave(home)@…, dave@[192.0.2.1]), and what is taken too
// much is only text that touched an address. A quoted local part may hold spaces ("dave smith"@…)
// and escaped quotes. An unquoted one is matched only from the start of a word, a quoted one
// only from a quote no backslash escapes: from anywhere else, a long line without an @ (or one of
// escaped quotes) took time by the square of its length (half a second at 20,000 characters, in
// the event loop).
const EMAIL = /(?<!\\)"(?:[^"\\\r\n]|\\.)*"@[^\s<>]+|(?<![^\s<>])[^\s<>]+@[^\s<>]+/g;

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

/**
 * How a read-only command (verify, plan) ends on an error: one line on stderr (and a JSON
 * `{ error }` with --json), exit 2. Errors it expects say their own message; others are marked.
 */
export function commandFailed(command: string, error: unknown, json: boolean, expected: boolean): number {
  const message = expected ? (error as Error).message : `unexpected error: ${(error as Error).message}`;
  if (json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
  process.stderr.write(`stakesync ${command}: ${message}\n`);
  return 2;
}

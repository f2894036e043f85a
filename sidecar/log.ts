/**
 * pino JSON logs. Email addresses never reach a log line: they are redacted wherever they
 * appear as a field, and the sidecar never puts one in a message.
 */
import pino from "pino";

export function createLogger(level = "info") {
  return pino({
    level,
    base: { service: "stakesync-sidecar" },
    redact: { paths: ["email", "*.email", "recipient", "*.recipient"], censor: "[redacted]" },
  });
}

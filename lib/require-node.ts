/**
 * Imported first by every entry point: Ponder 0.17 needs Node.js 22 or newer, and an older
 * runtime would fail later with a stack trace instead of one line saying what to install.
 */
const MINIMUM_MAJOR = 22;
const major = Number(process.versions.node.split(".")[0]);
if (major < MINIMUM_MAJOR) {
  process.stderr.write(
    `stakesync: Node.js ${process.versions.node} is too old: install Node.js ${MINIMUM_MAJOR} or newer (24 LTS recommended)\n`,
  );
  process.exit(1);
}

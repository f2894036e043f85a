/**
 * Read by Ponder, not by us: Ponder builds the app with a Vite server rooted at this directory, and
 * Vite loads this file into it (vitest reads vitest.config.ts instead). Ponder uses that server
 * only to load the app's files; two of Vite's defaults cost it:
 *
 * - Vite's own SIGTERM handler closes the server and calls process.exit() before Ponder's
 *   shutdown has released its schema lock, so the next `ponder start` on the schema waited 15-25 s
 *   for the lock to expire. Middleware mode installs no handler: SIGTERM then stops Ponder as
 *   SIGINT does, lock released.
 * - `ponder start` never reloads, yet Vite's file watcher crawled the repository at every start
 *   and held an inotify watch on each directory (1,681 in a fresh clone after `npm ci`, per Ponder
 *   process), waking on every file written under them. `ponder dev` (`npm run dev`) reloads on
 *   edits, but not on what the local stack writes: its PostgreSQL's data in .data/ kept that
 *   Ponder at 15 % of a core while idle, 7 % without it.
 *
 * Both pinned by test/ponder-internals (sigterm-unlock, vite-config).
 */
const command = process.argv.slice(2).find((arg) => !arg.startsWith("-"));

export default {
  server: {
    middlewareMode: true,
    watch:
      command === "dev"
        ? { ignored: ["**/.data/**", "**/bench/.cache/**", "**/test-artifacts/**", "**/dist/**", "**/.scratch/**"] }
        : null,
  },
};

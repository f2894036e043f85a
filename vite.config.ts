/**
 * Read by Ponder, not by us: Ponder builds the app with a Vite server rooted at this directory, and
 * Vite loads this file into it (vitest reads vitest.config.ts instead).
 *
 * `ponder start` never reloads, yet Vite's default file watcher crawled the repository at every
 * start and held an inotify watch on each directory (1,681 in a fresh clone after `npm ci`, per
 * Ponder process), waking on every file written under them. `ponder dev` (`npm run dev`) reloads
 * on edits, but not on what the local stack writes: its PostgreSQL's data in .data/ kept that
 * Ponder at 15 % of a core while idle, 7 % without it.
 */
const command = process.argv.slice(2).find((arg) => !arg.startsWith("-"));

export default {
  server: {
    watch:
      command === "dev"
        ? { ignored: ["**/.data/**", "**/bench/.cache/**", "**/test-artifacts/**", "**/dist/**", "**/.scratch/**"] }
        : null,
  },
};

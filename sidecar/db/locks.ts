/**
 * The sidecar's advisory lock keys, side by side so that none is taken twice: the index build's
 * was once the leader's, and a sidecar building an index held the lead from the others (or,
 * while another led, never built it).
 */
export const LOCKS = {
  /** Transaction-level, while migrating (migrate.ts). */
  migration: 7_263_001,
  /** Session-level, held by the leader's connection (leader.ts). */
  leader: 7_263_002,
  /** Session-level, tried only, while building the developers indexes (developers-table.ts). */
  indexBuild: 7_263_003,
} as const;

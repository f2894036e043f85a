/**
 * CPU time of local processes, from /proc (Linux): the bench says with it where a run's time
 * went (Ponder, the sidecar, PostgreSQL's server processes). /proc/<pid>/stat counts in USER_HZ
 * ticks, which Linux fixes at 100 for user space whatever the kernel's own tick.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command name; undefined once the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The name is in parentheses and may hold spaces or parentheses itself: split after the last.
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

// Indexes into statFields (proc(5) numbers fields from 1, the name being 2): ppid is field 4,
// utime 14, stime 15, cutime 16 and cstime 17 (children waited for).
const PPID = 1;
const UTIME = 11;
const STIME = 12;
const CUTIME = 13;
const CSTIME = 14;

const ticks = (fields: string[], ...at: number[]) => at.reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);

/** User and system CPU seconds of `pid` (its threads included); undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  const fields = pid === undefined ? undefined : statFields(pid);
  return fields && ticks(fields, UTIME, STIME) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of `pid` and every child it has had: its own, its ended children's (once it waited
 * for them), and its live children's. For a PostgreSQL server: the postmaster, its backends,
 * ended or not, and its background workers. A child that ends between the two reads counts once
 * more or once less: take the difference over a run once its clients have disconnected.
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const own = statFields(pid);
  if (!own) return undefined;
  let total = ticks(own, UTIME, STIME, CUTIME, CSTIME);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[PPID]) === pid) total += ticks(fields, UTIME, STIME, CUTIME, CSTIME);
  }
  return total / TICKS_PER_SECOND;
}

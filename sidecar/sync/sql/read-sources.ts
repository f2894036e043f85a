/**
 * Every Ponder instance's progress (PONDER_REPLICA_SCHEMAS), for choose-source.ts. Read before
 * the step, not in it, each instance in a short transaction of its own that waits at most
 * LOCK_WAIT_MS for Ponder's locks: an instance frozen inside its own reorg or crash-recovery
 * transaction (both lock _ponder_checkpoint exclusively; Ponder lets such a transaction idle for
 * an hour) counts as absent, and so does one this role cannot read. Neither holds up the step,
 * which then locks and reads only the instance chosen.
 * Reads `_ponder_checkpoint` and `_ponder_meta` of each schema.
 */
import type pg from "pg";
import { inTransaction } from "../../db/transaction";
import type { Source } from "../choose-source";
import { readProgress } from "./read-progress";

/** Ponder's own transactions hold those locks for milliseconds; a wait this long is not one. */
export const LOCK_WAIT_MS = 500;

/** Lock wait or statement timeout, no privilege, no table or schema: that instance is absent. */
const ABSENT = new Set(["55P03", "57014", "42501", "42P01", "3F000"]);

export async function readSources(db: pg.ClientBase, schemas: string[]): Promise<Source[]> {
  const sources: Source[] = [];
  for (const schema of schemas) {
    const begin = `BEGIN READ ONLY; SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms';
                   SET LOCAL statement_timeout = '${4 * LOCK_WAIT_MS}ms'`;
    const progress = await inTransaction(db, begin, () => readProgress(db, schema)).catch((error) => {
      if (ABSENT.has((error as { code?: string }).code ?? "")) return null;
      throw error; // the database itself: the step would fail the same way
    });
    sources.push({ schema, progress });
  }
  return sources;
}

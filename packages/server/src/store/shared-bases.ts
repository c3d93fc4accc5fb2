// Snapshot bases in the blob store every host shares (lifecycle/suspended-transfer.ts): each snapshot's base lives
// under `bases/<sha>/<generation>/`, with the time a publish last used it. The collector (lifecycle/shared-garbage.ts)
// removes a row only by compare-and-set on that time, so a publish that uses the base meanwhile keeps it, and one
// after the removal starts a new generation under a new prefix, never racing the removal of the old one's objects.
import type { SqlExecutor } from './driver.js';

export interface SharedBaseRecord {
  sha: string;
  generation: string;
  usedAt: string;
}

/** A publish uses the base of `sha`: its generation in force (`generation` if it had none), used now. */
export async function useSharedBase(db: SqlExecutor, sha: string, generation: string, nowIso: string): Promise<string> {
  const [row] = await db.query(
    'INSERT INTO shared_bases (sha, generation, used_at) VALUES ($1, $2, $3) ON CONFLICT (sha) DO UPDATE SET ' +
      'used_at = excluded.used_at RETURNING generation',
    [sha, generation, nowIso],
  );
  return String(row.generation);
}

export async function listSharedBases(db: SqlExecutor): Promise<SharedBaseRecord[]> {
  const rows = await db.query('SELECT sha, generation, used_at FROM shared_bases ORDER BY sha');
  return rows.map((r) => ({ sha: String(r.sha), generation: String(r.generation), usedAt: String(r.used_at) }));
}

/** Remove a base's row if it is still that generation and unused since `usedBeforeIso`: true for the one that did. */
export async function dropSharedBase(
  db: SqlExecutor,
  sha: string,
  generation: string,
  usedBeforeIso: string,
): Promise<boolean> {
  const removed = await db.run('DELETE FROM shared_bases WHERE sha = $1 AND generation = $2 AND used_at < $3', [
    sha,
    generation,
    usedBeforeIso,
  ]);
  return removed === 1;
}

// What each MicroVM holds on its host's disk (its overlay, its suspended state), as its host last measured it: so a
// tenant's storage quota counts every host's VMs, wherever it is checked (lifecycle/storage-quota.ts). A VM's row
// goes once it has ended.
import type { SqlExecutor } from './driver.js';

/** The bytes of each of `entries`, measured on `hostId` at `measuredAt`. */
export async function recordMicroVMStorage(
  db: SqlExecutor,
  hostId: string,
  entries: ReadonlyArray<{ id: string; bytes: number }>,
  measuredAt: string,
): Promise<void> {
  for (const { id, bytes } of entries)
    await db.run(
      'INSERT INTO microvm_storage (id, host_id, bytes, measured_at) VALUES ($1, $2, $3, $4) ' +
        'ON CONFLICT (id) DO UPDATE SET host_id = $2, bytes = $3, measured_at = $4',
      [id, hostId, bytes, measuredAt],
    );
}

/** The last measured bytes of each of `ids` that has a measure. */
export async function microVMStorage(db: SqlExecutor, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query(
    `SELECT id, bytes FROM microvm_storage WHERE id IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`,
    [...ids],
  );
  return new Map(rows.map((r) => [r.id as string, Number(r.bytes)]));
}

/** Rows of VMs that ended (their files are gone). */
export async function dropEndedMicroVMStorage(db: SqlExecutor): Promise<number> {
  return db.run(
    "DELETE FROM microvm_storage WHERE id IN (SELECT id FROM microvms WHERE state IN ('TERMINATED', 'FAILED'))",
  );
}

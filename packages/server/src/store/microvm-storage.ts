// What each MicroVM holds on its host's disk (its overlay, its suspended state), as its host last measured it: so a
// tenant's storage quota counts every host's VMs, wherever it is checked (lifecycle/storage-quota.ts). A VM's row
// goes once it has ended.
import { placeholders, type SqlExecutor } from './driver.js';

/** Rows per statement: 4 parameters each, well under every backend's limit. */
const ROWS_PER_STATEMENT = 200;

/** The bytes of each of `entries`, measured on `hostId` at `measuredAt`: one statement per ROWS_PER_STATEMENT. */
export async function recordMicroVMStorage(
  db: SqlExecutor,
  hostId: string,
  entries: ReadonlyArray<{ id: string; bytes: number }>,
  measuredAt: string,
): Promise<void> {
  for (let start = 0; start < entries.length; start += ROWS_PER_STATEMENT) {
    const rows = entries.slice(start, start + ROWS_PER_STATEMENT);
    const values = rows.map((_, i) => `(${placeholders(4, i * 4 + 1)})`).join(', ');
    await db.run(
      `INSERT INTO microvm_storage (id, host_id, bytes, measured_at) VALUES ${values} ON CONFLICT (id) DO UPDATE ` +
        'SET host_id = excluded.host_id, bytes = excluded.bytes, measured_at = excluded.measured_at',
      rows.flatMap(({ id, bytes }) => [id, hostId, bytes, measuredAt]),
    );
  }
}

/** The last measured bytes of each of `ids` that has a measure. */
export async function microVMStorage(db: SqlExecutor, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query(`SELECT id, bytes FROM microvm_storage WHERE id IN (${placeholders(ids.length)})`, [
    ...ids,
  ]);
  return new Map(rows.map((r) => [r.id as string, Number(r.bytes)]));
}

/** Rows of VMs that ended (their files are gone). */
export async function dropEndedMicroVMStorage(db: SqlExecutor): Promise<number> {
  return db.run(
    "DELETE FROM microvm_storage WHERE id IN (SELECT id FROM microvms WHERE state IN ('TERMINATED', 'FAILED'))",
  );
}

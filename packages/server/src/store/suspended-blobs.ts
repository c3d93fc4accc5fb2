// A SUSPENDED MicroVM's state in the shared blob store (lifecycle/suspended-transfer.ts, take-over.ts): where it
// is (`suspended_blob`: a key prefix; NULL while only on its host; '' while a resume on its host holds it), and
// the compare-and-sets that keep two hosts from both running it.
import type { SqlExecutor } from './driver.js';

/** Only for the suspend of `suspendedAt`, still SUSPENDED, and not held by a resume. */
export async function publishSuspendedBlob(
  db: SqlExecutor,
  id: string,
  suspendedAt: string,
  key: string,
): Promise<boolean> {
  const changed = await db.run(
    'UPDATE microvms SET suspended_blob = $1 ' +
      "WHERE id = $2 AND state = 'SUSPENDED' AND suspended_at = $3 AND suspended_blob IS NULL",
    [key, id, suspendedAt],
  );
  return changed === 1;
}

/** From `fromHostId` to `toHostId` if published and not held; nothing of the old host's (uid, pid, slot) kept. */
export async function takeSuspendedMicroVM(
  db: SqlExecutor,
  id: string,
  fromHostId: string,
  toHostId: string,
): Promise<boolean> {
  const changed = await db.run(
    'UPDATE microvms SET host_id = $1, updated_at = $2, jail_uid = NULL, qemu_pid = NULL, net_slot = NULL ' +
      "WHERE id = $3 AND host_id = $4 AND state = 'SUSPENDED' AND suspended_blob <> ''",
    [toHostId, new Date().toISOString(), id, fromHostId],
  );
  return changed === 1;
}

/** A resume on `hostId` holds its VM there. */
export async function holdSuspendedOnHost(db: SqlExecutor, id: string, hostId: string): Promise<boolean> {
  const changed = await db.run(
    "UPDATE microvms SET suspended_blob = '' " +
      "WHERE id = $1 AND (host_id = $2 OR host_id IS NULL) AND state = 'SUSPENDED'",
    [id, hostId],
  );
  return changed === 1;
}

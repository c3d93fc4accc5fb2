// Lists of MicroVM records: a tenant's page (filters, metadata, cursor), every server's in some states, a host's
// left holding what it ran, and those changed since a time (the event stream's replay).
import type { MicroVMState } from '@capsule/protocol';
import type { SqlDriver, SqlExecutor } from './driver.js';
import { fromRow, placeholders } from './microvm-rows.js';
import type { ListFilter, MicroVMRecord } from './types.js';

/** A tenant's page of MicroVMs by id, filtered. */
export async function listMicroVMs(db: SqlDriver, filter: ListFilter): Promise<MicroVMRecord[]> {
  const params: unknown[] = [filter.tenantId];
  const where = ['tenant_id = $1'];
  const param = (value: unknown): string => `$${params.push(value)}`;
  if (filter.state) where.push(`state = ${param(filter.state)}`);
  if (filter.imageName) where.push(`image_name = ${param(filter.imageName)}`);
  if (filter.imageVersion !== undefined) where.push(`COALESCE(image_version, 1) = ${param(filter.imageVersion)}`);
  if (filter.after) where.push(`id > ${param(filter.after)}`);
  for (const [key, value] of Object.entries(filter.metadata ?? {})) {
    // the key is compared as data, never spliced into a JSON path
    where.push(
      db.dialect === 'sqlite'
        ? `EXISTS (SELECT 1 FROM json_each(metadata_json) WHERE json_each.key = ${param(key)} AND ` +
            `json_each.value = ${param(value)})`
        : `(metadata_json::jsonb ->> ${param(key)}::text) = ${param(value)}::text`,
    );
  }
  const rows = await db.query(
    `SELECT * FROM microvms WHERE ${where.join(' AND ')} ORDER BY id LIMIT ${param(filter.limit)}`,
    params,
  );
  return rows.map(fromRow);
}

/** Every tenant's MicroVMs in these states; with `hostId`, only that host's. */
export async function listMicroVMsInStates(
  db: SqlExecutor,
  states: MicroVMState[],
  hostId?: string,
): Promise<MicroVMRecord[]> {
  if (states.length === 0) return [];
  const onHost = hostId === undefined ? '' : ` AND host_id = $${states.length + 1}`;
  const rows = await db.query(
    `SELECT * FROM microvms WHERE state IN (${placeholders(states.length)})${onHost}`,
    hostId === undefined ? states : [...states, hostId],
  );
  return rows.map(fromRow);
}

/** One tenant's MicroVMs in these states, on any host. */
export async function listTenantMicroVMsInStates(
  db: SqlExecutor,
  tenantId: string,
  states: MicroVMState[],
): Promise<MicroVMRecord[]> {
  if (states.length === 0) return [];
  const rows = await db.query(
    `SELECT * FROM microvms WHERE state IN (${placeholders(states.length)}) AND tenant_id = $${states.length + 1}`,
    [...states, tenantId],
  );
  return rows.map(fromRow);
}

/** `hostId`'s MicroVMs that run nothing (SUSPENDED, FAILED, TERMINATED) yet name a QEMU or a namespace there. */
export async function listMicroVMsLeftHolding(db: SqlExecutor, hostId: string): Promise<MicroVMRecord[]> {
  const rows = await db.query(
    "SELECT * FROM microvms WHERE host_id = $1 AND state IN ('SUSPENDED', 'FAILED', 'TERMINATED') AND " +
      '(qemu_pid IS NOT NULL OR net_slot IS NOT NULL)',
    [hostId],
  );
  return rows.map(fromRow);
}

/** MicroVMs made or moved to a new state at or after `sinceIso` (their history), as they are now. */
export async function microVMsChangedSince(db: SqlExecutor, sinceIso: string): Promise<MicroVMRecord[]> {
  const rows = await db.query(
    'SELECT * FROM microvms WHERE id IN (SELECT microvm_id FROM microvm_history WHERE at >= $1) ORDER BY updated_at',
    [sinceIso],
  );
  return rows.map(fromRow);
}

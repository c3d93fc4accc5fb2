// Lists of MicroVM records: a tenant's page (filters, metadata, cursor), every server's in some states, a host's
// left holding what it ran, and those changed since a time (the event stream's replay).
import type { MicroVMState } from '@capsule/protocol';
import { placeholders, type SqlDriver, type SqlExecutor } from './driver.js';
import { fromRow } from './microvm-rows.js';
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

/** MicroVMs in `states`, those whose `column` is `value` when one is given. */
async function inStates(
  db: SqlExecutor,
  states: MicroVMState[],
  where: { column: 'host_id' | 'tenant_id'; value: string } | null,
): Promise<MicroVMRecord[]> {
  if (states.length === 0) return [];
  const rows = await db.query(
    `SELECT * FROM microvms WHERE state IN (${placeholders(states.length)})` +
      (where ? ` AND ${where.column} = $${states.length + 1}` : ''),
    where ? [...states, where.value] : states,
  );
  return rows.map(fromRow);
}

/** Every tenant's MicroVMs in these states; with `hostId`, only that host's. */
export function listMicroVMsInStates(
  db: SqlExecutor,
  states: MicroVMState[],
  hostId?: string,
): Promise<MicroVMRecord[]> {
  return inStates(db, states, hostId === undefined ? null : { column: 'host_id', value: hostId });
}

/** One tenant's MicroVMs in these states, on any host. */
export function listTenantMicroVMsInStates(
  db: SqlExecutor,
  tenantId: string,
  states: MicroVMState[],
): Promise<MicroVMRecord[]> {
  return inStates(db, states, { column: 'tenant_id', value: tenantId });
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

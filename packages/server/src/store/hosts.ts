// The hosts table: every server that runs VMs registers here and renews a lease (cluster/host-lease.ts).
// Leases are compared as ISO timestamps written by each host's clock: hosts' clocks must agree to well
// under the lease (NTP). `down_count` counts the times a host was marked down, so a host that renews
// learns it was given up meanwhile (and its VMs with it) without a race between reading and renewing.
// `drain_requested` keeps an operator's drain through the host's going down and coming back: it is draining again.
import type { HostCapacity, HostState } from '@capsule/protocol';
import type { Row, SqlExecutor } from './driver.js';

export interface HostRecord {
  id: string;
  state: HostState;
  advertiseUrl: string;
  capacity: HostCapacity;
  registeredAt: string;
  heartbeatAt: string;
  leaseExpiresAt: string;
  /** Times it was marked down. */
  downCount: number;
  /** What it has ready for a launch, as of its last renewal: `warm:<key>`, `cached:<key>` (lifecycle/placement.ts). */
  ready: string[];
}

/** What one host's MicroVMs holding resources take. */
export interface HostUsage {
  vcpus: number;
  memoryMib: number;
  microvms: number;
}

const hostFromRow = (row: Row): HostRecord => ({
  id: row.id as string,
  state: row.state as HostState,
  advertiseUrl: row.advertise_url as string,
  capacity: JSON.parse(row.capacity_json as string) as HostCapacity,
  registeredAt: row.registered_at as string,
  heartbeatAt: row.heartbeat_at as string,
  leaseExpiresAt: row.lease_expires_at as string,
  downCount: Number(row.down_count),
  ready: JSON.parse((row.ready_json as string | null) ?? '[]') as string[],
});

/**
 * Register (or re-register) a host with a fresh lease: ready again unless a drain was asked for, which it stays.
 * Returns the record as stored; null when another server (`instanceId`: its data dir's) holds the id on a live
 * lease: two servers with one host id would take each other's VMs.
 */
export async function registerHost(
  db: SqlExecutor,
  host: Omit<HostRecord, 'state' | 'downCount' | 'registeredAt' | 'ready'> & { instanceId: string },
): Promise<HostRecord | null> {
  const [row] = await db.query(
    'INSERT INTO hosts (id, state, advertise_url, capacity_json, registered_at, heartbeat_at, lease_expires_at, ' +
      "down_count, instance_id) VALUES ($1, 'ready', $2, $3, $4, $4, $5, 0, $6) ON CONFLICT (id) DO UPDATE SET " +
      'advertise_url = $2, capacity_json = $3, heartbeat_at = $4, lease_expires_at = $5, instance_id = $6, ' +
      "state = CASE WHEN hosts.drain_requested = 1 THEN 'draining' ELSE 'ready' END " +
      "WHERE hosts.instance_id IS NULL OR hosts.instance_id = $6 OR hosts.state = 'down' OR " +
      'hosts.lease_expires_at < $4 RETURNING *',
    [host.id, host.advertiseUrl, JSON.stringify(host.capacity), host.heartbeatAt, host.leaseExpiresAt, host.instanceId],
  );
  return row ? hostFromRow(row) : null;
}

/**
 * Renew a lease (a down host is ready again, or draining if a drain was asked for), with what it has `ready` for
 * launches; null if not registered.
 */
export async function renewHostLease(
  db: SqlExecutor,
  id: string,
  heartbeatAt: string,
  leaseExpiresAt: string,
  ready: readonly string[] = [],
): Promise<HostRecord | null> {
  const [row] = await db.query(
    'UPDATE hosts SET heartbeat_at = $2, lease_expires_at = $3, ready_json = $4, ' +
      "state = CASE WHEN state <> 'down' THEN state WHEN drain_requested = 1 THEN 'draining' ELSE 'ready' END " +
      'WHERE id = $1 RETURNING *',
    [id, heartbeatAt, leaseExpiresAt, JSON.stringify(ready)],
  );
  return row ? hostFromRow(row) : null;
}

export async function listHosts(db: SqlExecutor): Promise<HostRecord[]> {
  return (await db.query('SELECT * FROM hosts ORDER BY id')).map(hostFromRow);
}

/**
 * A drain asked for, or ended: the host's state set to draining or ready; a down one stays down, and is that once it
 * renews.
 */
export async function setHostDraining(db: SqlExecutor, id: string, draining: boolean): Promise<HostRecord | null> {
  const [row] = await db.query(
    "UPDATE hosts SET drain_requested = $2, state = CASE WHEN state = 'down' THEN 'down' WHEN $2 = 1 THEN 'draining' " +
      "ELSE 'ready' END WHERE id = $1 RETURNING *",
    [id, draining ? 1 : 0],
  );
  return row ? hostFromRow(row) : null;
}

/** Hosts whose lease ran out before `nowIso` and that are not marked down yet. */
export async function expiredHosts(db: SqlExecutor, nowIso: string): Promise<string[]> {
  const rows = await db.query("SELECT id FROM hosts WHERE state <> 'down' AND lease_expires_at < $1", [nowIso]);
  return rows.map((r) => r.id as string);
}

/** Mark a host down if its lease is still expired: true for the one caller that did it. */
export async function markHostDown(db: SqlExecutor, id: string, nowIso: string): Promise<boolean> {
  const changed = await db.run(
    "UPDATE hosts SET state = 'down', down_count = down_count + 1 WHERE id = $1 AND state <> 'down' AND " +
      'lease_expires_at < $2',
    [id, nowIso],
  );
  return changed === 1;
}

/** Per host, what its MicroVMs in `states` take. */
export async function hostUsage(db: SqlExecutor, states: readonly string[]): Promise<Map<string, HostUsage>> {
  const rows = await db.query(
    'SELECT host_id, COUNT(*) AS n, COALESCE(SUM(vcpu_count), 0) AS vcpus, COALESCE(SUM(memory_mib), 0) AS mib ' +
      `FROM microvms WHERE host_id IS NOT NULL AND state IN (${states.map((_, i) => `$${i + 1}`).join(', ')}) ` +
      'GROUP BY host_id',
    [...states],
  );
  return new Map(
    rows.map((r) => [r.host_id as string, { vcpus: Number(r.vcpus), memoryMib: Number(r.mib), microvms: Number(r.n) }]),
  );
}

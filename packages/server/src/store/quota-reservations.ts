// Tenant quotas across servers: an admitted launch or resume holds a reservation row until its VM shows in the
// tenant's usage (lifecycle/quotas.ts releases it). A new admission reads the tenant's usage plus the live
// reservations of VMs not yet counted, in one transaction under a lock on the tenant (a Postgres advisory lock;
// SQLite's BEGIN IMMEDIATE locks the whole database), so servers admitting for one tenant at once never overshoot.
// A reservation its server never released (it crashed) ends at its expiry, when its host restarts, or when its host
// is given up.
import type { MicroVMState } from '@capsule/protocol';
import { placeholders, type SqlDriver, type SqlExecutor } from './driver.js';
import type { QuotaReservation, TenantUsage } from './types.js';

/**
 * The tenant's VMs in `states` and its live reservations of VMs not yet counted, read in one statement: one snapshot.
 * (Two statements, under READ COMMITTED, each see their own: a launch elsewhere that inserts its VM and then drops
 * its reservation between them was seen in neither, and a tenant went one VM over its quota.)
 */
async function usageWithReservations(
  tx: SqlExecutor,
  tenantId: string,
  states: readonly MicroVMState[],
  nowIso: string,
): Promise<TenantUsage> {
  const inStates = placeholders(states.length, 3);
  const [row] = await tx.query(
    'SELECT v.n AS vms, v.vcpus AS vm_vcpus, v.mib AS vm_mib, r.n AS held, r.vcpus AS held_vcpus, r.mib AS held_mib ' +
      'FROM (SELECT COUNT(*) AS n, COALESCE(SUM(vcpu_count), 0) AS vcpus, COALESCE(SUM(memory_mib), 0) AS mib ' +
      `FROM microvms WHERE tenant_id = $1 AND state IN (${inStates})) v, ` +
      // reservations of VMs already counted in their states are not counted twice
      '(SELECT COUNT(*) AS n, COALESCE(SUM(q.vcpu_count), 0) AS vcpus, COALESCE(SUM(q.memory_mib), 0) AS mib ' +
      'FROM quota_reservations q WHERE q.tenant_id = $1 AND q.expires_at > $2 AND NOT EXISTS (SELECT 1 FROM ' +
      `microvms m WHERE m.id = q.id AND m.state IN (${inStates}))) r`,
    [tenantId, nowIso, ...states],
  );
  return {
    microvms: Number(row.vms) + Number(row.held),
    vcpuCount: Number(row.vm_vcpus) + Number(row.held_vcpus),
    memoryMib: Number(row.vm_mib) + Number(row.held_mib),
  };
}

/**
 * Under the tenant's lock: its usage (VMs in `states` and live reservations) goes to `check`, which throws to
 * refuse; otherwise `reservation` is added (replacing one for the same VM).
 */
export async function reserveTenantUsage(
  db: SqlDriver,
  reservation: QuotaReservation,
  states: readonly MicroVMState[],
  check: (usage: TenantUsage) => void,
  nowIso: string,
): Promise<void> {
  await db.transaction(async (tx) => {
    if (db.dialect === 'postgres')
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('capsule-quota:' || $1))", [reservation.tenantId]);
    await tx.run('DELETE FROM quota_reservations WHERE expires_at <= $1 OR id = $2', [nowIso, reservation.id]);
    check(await usageWithReservations(tx, reservation.tenantId, states, nowIso));
    await tx.run(
      'INSERT INTO quota_reservations (id, tenant_id, host_id, vcpu_count, memory_mib, expires_at) ' +
        'VALUES ($1, $2, $3, $4, $5, $6)',
      [
        reservation.id,
        reservation.tenantId,
        reservation.hostId,
        reservation.vcpuCount,
        reservation.memoryMib,
        reservation.expiresAt,
      ],
    );
  });
}

export async function releaseReservation(db: SqlExecutor, id: string): Promise<void> {
  await db.run('DELETE FROM quota_reservations WHERE id = $1', [id]);
}

/** Every reservation a host made (it restarted, or it was given up): none of its admissions is under way. */
export async function releaseHostReservations(db: SqlExecutor, hostId: string): Promise<number> {
  return db.run('DELETE FROM quota_reservations WHERE host_id = $1', [hostId]);
}

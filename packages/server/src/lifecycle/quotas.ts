// Tenant quotas: running MicroVMs, vCPUs and memory held at once. A launch or resume is admitted only
// if the tenant's usage plus what it asks for stays within every quota; otherwise 429 QUOTA_EXCEEDED
// naming what was exceeded. Checks for one tenant are serialized across servers (a lock on the tenant in the
// store), and an admitted request holds a reservation row until its VM shows in the store's usage, so
// concurrent requests, through any server, cannot overshoot.
// Then the host's own room (HostRoom): guest memory on this host within CAPSULE_HOST_MAX_MEMORY_MIB.
import { Mutex } from 'async-mutex';
import { CapsuleError, ErrorCode, type MicroVMState, type TenantQuotas, type VmShape } from '@capsule/protocol';
import type { Store, TenantRecord, TenantUsage } from '../store/types.js';

/**
 * States in which a MicroVM holds its vCPUs and memory: until its QEMU has exited (a TERMINATING VM becomes TERMINATED
 * only then).
 */
export const HOLDING_STATES: MicroVMState[] = ['PENDING', 'RUNNING', 'SUSPENDING', 'TERMINATING'];

/** What a launch or resume asks of its tenant's quotas. */
export type Demand = VmShape;

/**
 * A host's own room: the guest memory of its MicroVMs holding resources stays within `maxMemoryMib` (null: no
 * cap), else 503 HOST_FULL; a draining host admits nothing (503 HOST_DRAINING). Only this host admits VMs onto
 * itself, so one lock in this process serializes every admission here, whichever server placed the launch:
 * placements may race, the host never overfills.
 */
export class HostRoom {
  private readonly lock = new Mutex();
  /** Admitted and not yet released: VM id → its guest memory (counted until its record shows in the store). */
  private readonly reserved = new Map<string, number>();

  constructor(
    private readonly store: Pick<Store, 'listMicroVMsInStates' | 'listHosts'>,
    private readonly hostId: string,
    private readonly maxMemoryMib: number | null,
  ) {}

  async admit(demand: Demand & { id: string }): Promise<() => void> {
    const self = (await this.store.listHosts()).find((h) => h.id === this.hostId);
    if (self?.state === 'draining') {
      throw new CapsuleError(ErrorCode.HOST_DRAINING, `host ${this.hostId} is draining: it takes no new MicroVM`, {
        details: { hostId: this.hostId },
      });
    }
    const max = this.maxMemoryMib;
    if (max === null) return () => undefined;
    return this.lock.runExclusive(async () => {
      const holding = await this.store.listMicroVMsInStates(HOLDING_STATES, this.hostId);
      const stored = new Set(holding.map((vm) => vm.id));
      let used = holding.reduce((sum, vm) => sum + vm.memoryMib, 0);
      for (const [id, mib] of this.reserved) if (!stored.has(id)) used += mib;
      if (used + demand.memoryMib > max) {
        throw new CapsuleError(
          ErrorCode.HOST_FULL,
          `host ${this.hostId} has no room: ${used} MiB of guest memory in use + ${demand.memoryMib} requested > ` +
            `${max} (CAPSULE_HOST_MAX_MEMORY_MIB)`,
          { details: { hostId: this.hostId, used, requested: demand.memoryMib, limit: max } },
        );
      }
      this.reserved.set(demand.id, demand.memoryMib);
      return () => this.reserved.delete(demand.id);
    });
  }
}

/** A reservation its server never released (it died mid-admission) ends after this long at most. */
const RESERVATION_TTL_MS = 10 * 60_000;

export class QuotaGate {
  constructor(
    private readonly store: Store,
    private readonly fallback: TenantQuotas,
    /** This host's room, checked once the tenant's quotas allow the demand. */
    private readonly hostRoom?: HostRoom,
    /** The host reservations are made by (released together when it restarts or is given up). */
    private readonly hostId = 'local',
  ) {}

  /**
   * Admit `demand` for the tenant or throw QUOTA_EXCEEDED; call the returned release once the VM is in the store's
   * usage (or failed). The tenant's usage is read with every server's reservations (store/quota-reservations.ts).
   */
  async admit(tenantId: string, demand: Demand & { id: string }): Promise<() => void> {
    // one tenant's admissions, on every server, are serialized by the store's lock on the tenant
    const quotas = effectiveQuotas(await this.store.getTenant(tenantId), this.fallback);
    const reservation = {
      id: demand.id,
      tenantId,
      hostId: this.hostId,
      vcpuCount: demand.vcpuCount,
      memoryMib: demand.memoryMib,
      expiresAt: new Date(Date.now() + RESERVATION_TTL_MS).toISOString(),
    };
    await this.store.reserveTenantUsage(reservation, HOLDING_STATES, (usage) => {
      const over = exceeded(quotas, usage, demand);
      if (over) {
        throw new CapsuleError(
          ErrorCode.QUOTA_EXCEEDED,
          `quota ${over.quota} exceeded: ${over.used} in use + ${over.requested} requested > ${over.limit}`,
          { details: over },
        );
      }
    });
    let releaseHost: () => void;
    try {
      releaseHost = (await this.hostRoom?.admit(demand)) ?? (() => undefined);
    } catch (err) {
      await this.store.releaseReservation(demand.id);
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseHost();
      // a release lost (the store unreachable) ends at the reservation's expiry or this host's restart
      this.store.releaseReservation(demand.id).catch(() => undefined);
    };
  }
}

function exceeded(
  quotas: TenantQuotas,
  usage: TenantUsage,
  demand: Demand,
): { quota: keyof TenantQuotas; limit: number; used: number; requested: number } | null {
  const checks: Array<[keyof TenantQuotas, number, number]> = [
    ['maxRunningMicroVMs', usage.microvms, 1],
    ['maxVcpus', usage.vcpuCount, demand.vcpuCount],
    ['maxMemoryMib', usage.memoryMib, demand.memoryMib],
  ];
  for (const [quota, used, requested] of checks) {
    if (used + requested > quotas[quota]) return { quota, limit: quotas[quota], used, requested };
  }
  return null;
}

/** A tenant's quotas with the server's defaults for any it does not have (a quota added after it was made). */
export function effectiveQuotas(tenant: Pick<TenantRecord, 'quotas'> | null, defaults: TenantQuotas): TenantQuotas {
  return { ...defaults, ...tenant?.quotas };
}

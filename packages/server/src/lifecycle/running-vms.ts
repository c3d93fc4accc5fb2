// The VMs this server runs now: each MicroVM's Vm and tenant, watched for a full host disk and for an
// exit nobody asked for (reported to `onLost`, which records the VM FAILED).
import type { MicroVMUsage } from '@capsule/protocol';
import type { Logger } from '../log.js';
import type { MicroVMRecord } from '../store/types.js';
import type { Vm } from '../vmm/vm.js';
import type { DiskPauses } from './disk-pauses.js';
import { machineUsage, usageByTenant } from './jail-ops.js';

/** How long a started or resumed VM keeps its start's CPU weight (jail/cgroups.ts). */
const STARTUP_CPU_PRIORITY_MS = 3000;

export class RunningVms {
  private readonly machines = new Map<string, Vm>();
  /** The tenant of each VM (per-tenant usage). */
  private readonly tenantOf = new Map<string, string>();

  constructor(
    private readonly diskPauses: DiskPauses,
    private readonly log: Logger,
    /** Its VM ended without a stop(): clean up and record why. */
    private readonly onLost: (id: string, reason: string) => Promise<void>,
  ) {}

  get(id: string): Vm | undefined {
    return this.machines.get(id);
  }

  entries(): IterableIterator<[string, Vm]> {
    return this.machines.entries();
  }

  /** Track a started VM: unexpected exits mark it FAILED. */
  adopt(record: Pick<MicroVMRecord, 'id' | 'tenantId'>, machine: Vm): void {
    this.machines.set(record.id, machine);
    this.tenantOf.set(record.id, record.tenantId);
    this.diskPauses.watch(record.id, machine);
    // its start's CPU weight (jail/cgroups.ts) lasts into its owner's first commands, then it is one among equals
    const settle = setTimeout(() => {
      try {
        machine.cgroup?.setCpuPriority('settled');
      } catch (err) {
        this.log.warn('could not lower a started VM to its settled CPU weight', { error: (err as Error).message });
      }
    }, STARTUP_CPU_PRIORITY_MS);
    settle.unref();
    // a background path: a store that is down now must not become an unhandled rejection (an exit)
    machine.onUnexpectedExit(
      (reason) =>
        void this.onLost(record.id, reason).catch((err: Error) =>
          this.log
            .child({ microvmId: record.id, tenantId: record.tenantId })
            .error('cleanup of a lost VM failed', { error: err.message }),
        ),
    );
  }

  /** Stop tracking a VM (it stopped, or is stopping). */
  forget(id: string): void {
    this.machines.delete(id);
    this.tenantOf.delete(id);
    this.diskPauses.forget(id);
  }

  /** What a running VM uses now; null when not running or unjailed. */
  usageOf(id: string): MicroVMUsage | null {
    return machineUsage(this.machines.get(id));
  }

  /** Running VMs' usage summed per tenant (the /metrics gauges). */
  usageByTenant(): Map<string, MicroVMUsage> {
    return usageByTenant([...this.tenantOf].map(([id, tenantId]) => ({ tenantId, usage: this.usageOf(id) })));
  }
}

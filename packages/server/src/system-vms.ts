// The system's own VMs: image builders, the VMs that take an image's app snapshot, and the ready
// snapshots of runtimes. They are nobody's tenant (their cgroups sit under the system level, and no
// tenant quota counts them), and together they hold at most a system quota: CAPSULE_SYSTEM_VMS at
// once and CAPSULE_SYSTEM_MEMORY_MIB of guest memory. A system VM that does not fit waits its turn
// (first come, first served); one that could never fit fails at once, saying so.
import { Semaphore } from 'async-mutex';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { SYSTEM_TENANT, type Jailer, type VmJail } from './jail/jailer.js';
import type { SystemQuota } from './config.js';

export interface SystemVmsUsage {
  vms: number;
  memoryMib: number;
  /** System VMs waiting for room. */
  waiting: number;
}

export class SystemVms {
  private readonly slots: Semaphore;
  private readonly memory: Semaphore;
  private readonly now: SystemVmsUsage = { vms: 0, memoryMib: 0, waiting: 0 };

  constructor(
    readonly quota: SystemQuota,
    private readonly jailer: Pick<Jailer, 'withJail'>,
  ) {
    this.slots = new Semaphore(quota.maxVms);
    this.memory = new Semaphore(quota.maxMemoryMib);
  }

  /**
   * Once a VM of `memoryMib` fits in the quota, run `task` (which starts and stops it) with its jail:
   * under the system's cgroup level, its uid claimed for `owner`.
   */
  async run<T>(what: string, memoryMib: number, owner: string, task: (jail: VmJail | null) => Promise<T>): Promise<T> {
    if (memoryMib > this.quota.maxMemoryMib || this.quota.maxVms < 1) {
      throw new CapsuleError(
        ErrorCode.QUOTA_EXCEEDED,
        `${what} needs a VM of ${memoryMib} MiB, and system VMs may hold at most ${this.quota.maxMemoryMib} ` +
          `MiB in ${this.quota.maxVms} VMs (CAPSULE_SYSTEM_MEMORY_MIB, CAPSULE_SYSTEM_VMS)`,
        {
          details: { quota: 'systemMemoryMib', limit: this.quota.maxMemoryMib, used: 0, requested: memoryMib },
        },
      );
    }
    this.now.waiting += 1;
    // always a slot first, then memory: two waiters never hold one each of what the other needs
    // (neither acquire rejects: nothing here cancels a semaphore)
    const [, releaseSlot] = await this.slots.acquire();
    const [, releaseMemory] = await this.memory.acquire(memoryMib);
    this.now.waiting -= 1;
    this.now.vms += 1;
    this.now.memoryMib += memoryMib;
    try {
      return await this.jailer.withJail(SYSTEM_TENANT, owner, task);
    } finally {
      this.now.vms -= 1;
      this.now.memoryMib -= memoryMib;
      releaseMemory();
      releaseSlot();
    }
  }

  usage(): SystemVmsUsage {
    return { ...this.now };
  }
}

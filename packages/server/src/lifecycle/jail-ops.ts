// The lifecycle's side of a MicroVM's jail: the uid a suspended VM resumes with, and what running VMs use
// (their cgroups and disk overlays) for the MicroVM object and /metrics.
import fs from 'node:fs';
import path from 'node:path';
import type { MicroVMUsage } from '@capsule/protocol';
import type { Jailer } from '../jail/jailer.js';
import { allocatedBytes, chownNoFollow } from '../jail/vm-files.js';
import type { MicroVMRecord, Store } from '../store/types.js';
import type { Vm } from '../vmm/vm.js';

/**
 * A suspended VM from before jails (no uid of its own), or one whose uid another server took while the
 * machine was down: a new uid, and its disk (and only its disk) given to it.
 */
export async function ensureUid(
  jailer: Jailer,
  store: Store,
  record: MicroVMRecord,
  diskPath: string,
): Promise<MicroVMRecord> {
  if (jailer.unsafe || record.jailUid !== null) return record;
  const jailUid = jailer.claimUid(record.id)!;
  const dir = path.dirname(diskPath);
  chownNoFollow(dir, 0, 0); // before jails a suspended VM's directory was QEMU's user's
  fs.chmodSync(dir, 0o700);
  chownNoFollow(diskPath, jailUid, jailUid);
  await store.updateMicroVM(record.id, { jailUid });
  return { ...record, jailUid };
}

/** CPU, memory now and at peak (its cgroup), disk allocated (its overlay); null without a cgroup. */
export function machineUsage(machine: Vm | undefined): MicroVMUsage | null {
  const usage = machine?.cgroup?.usage();
  return machine && usage ? { ...usage, diskBytes: allocatedBytes(machine.overlayPath) } : null;
}

export function usageByTenant(vms: Array<{ tenantId: string; usage: MicroVMUsage | null }>): Map<string, MicroVMUsage> {
  const sums = new Map<string, MicroVMUsage>();
  for (const { tenantId, usage } of vms) {
    if (!usage) continue;
    const sum = sums.get(tenantId) ?? { cpuSeconds: 0, memoryBytes: 0, memoryPeakBytes: 0, diskBytes: 0 };
    for (const key of Object.keys(sum) as Array<keyof MicroVMUsage>) sum[key] += usage[key];
    sums.set(tenantId, sum);
  }
  return sums;
}

// The hypervisor the server runs VMs with: QEMU, one Machine per VM (machine.ts).
import type { Hypervisor } from './vm.js';
import { Machine } from './machine.js';

export const qemuHypervisor: Hypervisor = {
  launch: (opts) => Machine.launch(opts),
  adopt: (vmDir, pid, overlayPath, cgroup) => Machine.adopt(vmDir, pid, overlayPath, cgroup),
};

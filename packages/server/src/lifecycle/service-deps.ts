// What the MicroVM service is built from: configuration, the store, the host's runtimes and jail,
// the network, storage meters, metrics and the hypervisor (QEMU, or a fake in the lifecycle's tests).
import type { BlobStore } from '../blobs/blob-store.js';
import type { CapsuleConfig } from '../config.js';
import type { DiskReserve } from '../disk-reserve.js';
import type { Jailer } from '../jail/jailer.js';
import type { Logger } from '../log.js';
import type { EgressLogs } from '../network/egress-log.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { Store } from '../store/types.js';
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import type { Hypervisor } from '../vmm/vm.js';
import type { LaunchSourceDeps } from './launch-source.js';
import type { VmNetworkPort } from './network-ops.js';
import type { StorageMeter } from './storage-quota.js';

export interface ServiceDeps {
  config: CapsuleConfig;
  store: Store;
  runtimes: LaunchSourceDeps['runtimes'];
  accelerator: AcceleratorDecision;
  /** Every QEMU's jail: its uid (recorded with the VM), mount namespace, cgroup. */
  jailer: Jailer;
  snapshots: ReadySnapshots | null;
  images: LaunchSourceDeps['images'];
  metrics: Metrics;
  log: Logger;
  /** Every MicroVM's namespace, egress policy and resolver (network/). */
  networks: VmNetworkPort;
  egressLogs: EgressLogs;
  /** The free-space reserve launches and suspends are checked against. */
  disk: DiskReserve;
  /** Tenants' storage quotas: a launch is refused while its tenant is at or over its own. */
  storage: StorageMeter;
  /** Starts and takes back VMs: QEMU (vmm/hypervisor.ts), or a fake in unit tests. */
  hypervisor: Hypervisor;
  /**
   * The blob store every host shares (CAPSULE_BLOBS=s3://…): suspended state is published there, so another host
   * can resume it. Null or absent: a suspended VM's state stays on its host.
   */
  sharedBlobs?: BlobStore | null;
  /** System VMs (builds, snapshots) run or wait now: the warm pool makes no clone meanwhile. */
  systemVmsBusy?: () => boolean;
}

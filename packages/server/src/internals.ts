// `@capsule/server/internals`: the parts below the API that the benchmarks and tests drive directly
// (a bare Machine for a floor, the store, the network plumbing, the lifecycle with a fake hypervisor).
// Not a contract for users: the server's public entry is index.ts.
export { openBlobStore } from './blobs/open.js';
export { S3BlobStore, s3Client, type S3Config } from './blobs/s3-blob-store.js';
export { type CapsuleConfig, loadConfig } from './config.js';
export { DiskReserve } from './disk-reserve.js';
export type { VmCgroup } from './jail/cgroups.js';
export { Jailer } from './jail/jailer.js';
export { UID_CLAIMS_DIR } from './jail/uid-pool.js';
export { MicroVMService, type ServiceDeps } from './lifecycle/microvm-service.js';
export type { VmNetworkPort } from './lifecycle/network-ops.js';
export { StorageMeter } from './lifecycle/storage-quota.js';
export { createLogger } from './log.js';
export { NodeSignatures } from './node-signature.js';
export { type SlotAddresses, slotAddresses, slotCount, slotOfNetns } from './network/addressing.js';
export { EgressLogs } from './network/egress-log.js';
export { netnsPath } from './network/netns.js';
export { VmNetworks } from './network/vm-networks.js';
export { Metrics } from './observability/metrics.js';
export { newcArchive, S_IFREG } from './runtimes/cpio.js';
export { type Runtime, RuntimeRegistry } from './runtimes/registry.js';
export { captureSnapshot } from './snapshots/capture.js';
export { ReadySnapshots } from './snapshots/ready-snapshots.js';
export { openStore } from './store/open.js';
export type { SqlStore } from './store/sql-store.js';
export { AgentClient } from './vmm/agent-client.js';
export { decideAccelerator } from './vmm/host-accelerator.js';
export { hostLaunchOptions, type LaunchOptions, Machine, RESTORE_LOAD } from './vmm/machine.js';
export { loadDeviceState } from './vmm/migration.js';
export { savedIgnoringShared } from './vmm/migration-stream.js';
export { type Accelerator, guestMacAddress, type MachineSpec, qemuArgs, vmPaths } from './vmm/qemu-args.js';
export { QmpClient } from './vmm/qmp.js';
export { SERIAL_LOG_MAX_BYTES } from './vmm/serial-log.js';
export type { Hypervisor, SuspendedFiles, Vm } from './vmm/vm.js';

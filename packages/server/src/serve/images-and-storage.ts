// A server's image service and storage meter, whatever its role: built the same on a host and on an api node
// (which passes no networks, since it builds nothing, and no host id, since it holds no VM's files).
import path from 'node:path';
import type { BlobStore } from '../blobs/blob-store.js';
import type { CapsuleConfig } from '../config.js';
import type { DiskReserve } from '../disk-reserve.js';
import { ImageService } from '../images/image-service.js';
import { StorageMeter } from '../lifecycle/storage-quota.js';
import type { Logger } from '../log.js';
import type { VmNetworks } from '../network/vm-networks.js';
import type { RuntimeRegistry } from '../runtimes/registry.js';
import type { Store } from '../store/types.js';
import type { SystemVms } from '../system-vms.js';
import type { Accelerator } from '../vmm/qemu-args.js';

export function imagesAndStorage(parts: {
  config: CapsuleConfig;
  store: Store;
  blobs: BlobStore;
  disk: DiskReserve;
  systemVms: SystemVms;
  runtimes: RuntimeRegistry;
  accelerator: Accelerator;
  networks: VmNetworks | null;
  /** This host; null: a server that runs no VM. */
  hostId: string | null;
  log: Logger;
}): { images: ImageService; storage: StorageMeter } {
  const { config, store, blobs, hostId, ...rest } = parts;
  const storage = new StorageMeter({
    store,
    blobs,
    vmsDir: path.join(config.dataDir, 'vms'),
    suspendedDir: path.join(config.dataDir, 'suspended'),
    imagesDir: path.join(config.dataDir, 'images'),
    defaults: config.defaultQuotas,
    hostId,
  });
  const images = new ImageService({
    ...rest,
    config,
    storage,
    store,
    blobs,
    inUse: async (tenantId, name, version) =>
      (await store.listMicroVMs({ tenantId, imageName: name, limit: 10_000 })).some(
        (vm) => vm.imageVersion === version && vm.state !== 'TERMINATED' && vm.state !== 'FAILED',
      ),
  });
  return { images, storage };
}

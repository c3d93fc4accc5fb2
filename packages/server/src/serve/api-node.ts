// `capsule serve --role api`: a server of a cluster that runs no VM. It serves the REST API, the AWS API, the
// console and endpoints from the cluster's database and blob store, and sends each MicroVM's work to the host
// that runs it (api/forward.ts): a launch or image build to the host placement picks. No accelerator probe, jail,
// network namespace, snapshot or lease: it is not a host, so placement never picks it, and any number of them can
// stand behind a load balancer. What would start a VM here refuses with HOST_FULL (no host ready).
import fs from 'node:fs';
import path from 'node:path';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RunningServer } from './running-server.js';
import { RuntimeRegistry } from '../runtimes/registry.js';
import { openStore } from '../store/open.js';
import { Jailer } from '../jail/jailer.js';
import { MicroVMService } from '../lifecycle/microvm-service.js';
import type { VmNetworkPort } from '../lifecycle/network-ops.js';
import { noHostReady } from '../lifecycle/placement.js';
import { openBlobStore } from '../blobs/open.js';
import { Metrics } from '../observability/metrics.js';
import { EgressLogs } from '../network/egress-log.js';
import { DiskReserve } from '../disk-reserve.js';
import { SystemVms } from '../system-vms.js';
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import type { Hypervisor } from '../vmm/vm.js';
import { imagesAndStorage } from './images-and-storage.js';
import { serveApi } from './serve-api.js';

/** What would start or take back a VM: refused here, never reached while placement finds a host. */
const NO_HYPERVISOR: Hypervisor = {
  launch: () => Promise.reject(noHostReady()),
  adopt: () => Promise.reject(noHostReady()),
};
const NO_NETWORKS: VmNetworkPort = {
  attach: () => Promise.reject(noHostReady()),
  adopt: () => Promise.reject(noHostReady()),
  update: () => Promise.reject(noHostReady()),
  release: () => Promise.resolve(),
  addressesOf: () => null,
};

export async function startApiNode(config: CapsuleConfig, log: Logger): Promise<RunningServer> {
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o755 });
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  log.info('store opened', { database: store.dialect });
  // the built-in runtimes' names and versions (GET /v1/runtimes, the AWS API's managed images)
  const runtimes = new RuntimeRegistry(config.cacheDir, config.dataDir, config.agentBundlePath);
  runtimes.load();
  const accelerator: AcceleratorDecision = {
    accelerator: config.accelerator === 'kvm' ? 'kvm' : 'tcg',
    reason: "this server runs no MicroVMs (CAPSULE_ROLE=api): its cluster's hosts do, each on its own accelerator",
  };
  log.info('api node: MicroVMs, launches and builds go to the hosts of the cluster', { hostId: config.hostId });
  const jailer = Jailer.none(
    { ...config, dataDir: path.resolve(config.dataDir), memoryOverheadMib: config.vmMemoryOverheadMib },
    noHostReady(),
  );
  const metrics = new Metrics();
  const systemVms = new SystemVms(config.systemQuota, jailer);
  const disk = new DiskReserve([config.dataDir, config.cacheDir], config.diskReserve);
  const blobs = openBlobStore(config);
  const { images, storage } = imagesAndStorage({
    config,
    store,
    blobs,
    disk,
    systemVms,
    runtimes,
    accelerator: accelerator.accelerator,
    networks: null,
    hostId: null,
    log,
  });
  const service = new MicroVMService({
    config,
    store,
    runtimes,
    accelerator,
    jailer,
    snapshots: null,
    images,
    metrics,
    log,
    networks: NO_NETWORKS,
    egressLogs: new EgressLogs(path.join(config.dataDir, 'egress-log')),
    disk,
    storage,
    hypervisor: NO_HYPERVISOR,
    sharedBlobs: blobs, // a down host's suspended VM terminated here drops its published state (host-gone.ts)
  });
  const api = await serveApi(
    config,
    store,
    { service, images, accelerator, metrics, usage: storage, runtimes, systemVms },
    log,
  );
  service.publicPort = Number(new URL(api.url).port);
  let closing: Promise<void> | null = null;
  return {
    url: api.url,
    config,
    runtimes,
    adminKey: api.adminKey,
    accelerator,
    jailer,
    service,
    snapshotsBuilt: Promise.resolve(),
    close() {
      closing ??= (async () => {
        api.server.close();
        api.server.closeAllConnections();
        api.closeSessions();
        await service.shutdown();
        await images.idle();
        await store.close();
      })();
      return closing;
    },
  };
}

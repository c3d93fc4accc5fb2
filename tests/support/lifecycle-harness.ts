// A MicroVMService for unit tests: the real lifecycle, store (SQLite in a temporary directory), quotas,
// jail bookkeeping (unjailed), disk reserve, storage meter, egress logs and metrics, with fakes only at
// the two boundaries that need root and QEMU: the hypervisor and the VM networks. A "restart" builds a
// second service on the same store, hypervisor and networks, as a new server process would find them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TenantQuotas } from '@capsule/protocol';
import {
  type CapsuleConfig,
  loadConfig,
  createLogger,
  openStore,
  type SqlStore,
  Jailer,
  DiskReserve,
  openBlobStore,
  StorageMeter,
  EgressLogs,
  Metrics,
  MicroVMService,
  type ServiceDeps,
  type Runtime,
} from '@capsule/server/internals';
import { FakeHypervisor } from './fake-hypervisor.js';
import { FakeNetworks } from './fake-networks.js';

export const TENANT = 'default';

/** The one runtime the harness offers (its files are never read: the hypervisor is fake). */
const RUNTIME: Runtime = {
  name: 'base',
  hash: 'fake',
  kernelRelease: '6.1.0-fake',
  nodeVersion: process.version,
  kernelPath: '/nonexistent/vmlinuz',
  rootfsPath: '/nonexistent/rootfs.ext4',
  initrdPath: '/nonexistent/initrd',
  builtAt: '2024-01-01T00:00:00.000Z',
};

export interface Harness {
  service: MicroVMService;
  store: SqlStore;
  hypervisor: FakeHypervisor;
  networks: FakeNetworks;
  config: CapsuleConfig;
  /** Every log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** A new service on the same store, hypervisor and networks (the old one shut down first), recovered. */
  restart(): Promise<MicroVMService>;
  /** Another server's service on the same store (and fakes), as host `hostId`; shut down by close(). */
  serverOn(hostId: string): MicroVMService;
  close(): Promise<void>;
}

export interface HarnessOptions {
  quotas?: Partial<TenantQuotas>;
  config?: Partial<CapsuleConfig>;
  /** The tenants' images, found in the harness's store. */
  images?: (store: SqlStore) => ServiceDeps['images'];
  /** Ready snapshots of the runtime (none: no snapshot and no warm pool). */
  snapshots?: ServiceDeps['snapshots'];
  /** The blob store every host shares, for suspended state (none: it stays on its host). */
  sharedBlobs?: ServiceDeps['sharedBlobs'];
}

/** A ready snapshot of the harness runtime at every shape, for a warm pool (files never read: the VMs are fake). */
export const FAKE_SNAPSHOTS = {
  get: (runtime: string, shape: { vcpuCount: number; memoryMib: number }) => ({
    kind: 'snapshot' as const,
    key: `${runtime}-fake`,
    runtime,
    ...shape,
    memoryPath: '/nonexistent/memory',
    statePath: '/nonexistent/state',
    diskPath: '/nonexistent/disk.qcow2',
  }),
  touch: () => undefined,
} as unknown as NonNullable<ServiceDeps['snapshots']>;

async function lifecycleHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-lifecycle-'));
  const config = loadConfig(
    {
      dataDir,
      cacheDir: path.join(dataDir, 'cache'),
      snapshotDir: path.join(dataDir, 'snapshots'),
      unsafeNoJail: true,
      snapshots: false,
      warmPoolSize: 0,
      diskReserve: { mib: 0, percent: 0 },
      ...opts.config,
      defaultQuotas: { ...loadConfig({}, {}).defaultQuotas, ...opts.quotas },
    },
    {},
  );
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger(sink, false);
  const store = await openStore({ databaseUrl: null, dataDir });
  const hypervisor = new FakeHypervisor();
  const networks = new FakeNetworks();
  const metrics = new Metrics();
  const deps = (hostId = config.hostId): ServiceDeps => ({
    config: { ...config, hostId },
    store,
    runtimes: { list: () => [RUNTIME], get: () => RUNTIME },
    accelerator: { accelerator: 'tcg', reason: 'unit test' },
    jailer: Jailer.create({ ...config, memoryOverheadMib: null }, log),
    snapshots: opts.snapshots ?? null,
    images: opts.images?.(store) ?? null,
    metrics,
    log,
    networks,
    egressLogs: new EgressLogs(path.join(dataDir, 'egress-log')),
    disk: new DiskReserve([dataDir], config.diskReserve),
    storage: new StorageMeter({
      store,
      blobs: openBlobStore(config),
      vmsDir: path.join(dataDir, 'vms'),
      suspendedDir: path.join(dataDir, 'suspended'),
      imagesDir: path.join(dataDir, 'images'),
      defaults: config.defaultQuotas,
      hostId,
    }),
    hypervisor,
    sharedBlobs: opts.sharedBlobs ?? null,
  });
  const others: MicroVMService[] = [];
  let service = new MicroVMService(deps());
  const harness: Harness = {
    get service() {
      return service;
    },
    store,
    hypervisor,
    networks,
    config,
    logs,
    async restart() {
      await service.shutdown();
      service = new MicroVMService(deps());
      await service.recover();
      return service;
    },
    serverOn(hostId) {
      const other = new MicroVMService(deps(hostId));
      others.push(other);
      return other;
    },
    async close() {
      for (const other of [service, ...others]) await other.shutdown();
      for (const vm of hypervisor.running) await vm.stop();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** A harness for one test, closed after it whatever happens. */
export async function withLifecycle(opts: HarnessOptions, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await lifecycleHarness(opts);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

/** A promise a test resolves when it chooses: hold a launch at `beforeReady` until `open()`. */
export function gate(): { wait: Promise<void>; open(): void; reached: Promise<void>; arrive(): void } {
  let open!: () => void;
  let arrive!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  return { wait, open, reached, arrive };
}

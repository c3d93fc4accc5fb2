// `capsule serve`: wire config → store → runtimes → accelerator → lifecycle → REST API.
import fs from 'node:fs';
import path from 'node:path';
import { checkRole, loadConfig, type CapsuleConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { RuntimeRegistry } from './runtimes/registry.js';
import { openStore } from './store/open.js';
import { decideAccelerator } from './vmm/host-accelerator.js';
import { qemuHypervisor } from './vmm/hypervisor.js';
import { Jailer } from './jail/jailer.js';
import { MicroVMService } from './lifecycle/microvm-service.js';
import { openBlobStore } from './blobs/open.js';
import { HostDrain } from './lifecycle/host-drain.js';
import { ReadySnapshots } from './snapshots/ready-snapshots.js';
import { Metrics } from './observability/metrics.js';
import { EgressLogs } from './network/egress-log.js';
import { VmNetworks } from './network/vm-networks.js';
import { dnsUpstreams } from './network/resolver.js';
import { LIVE_STATES } from './store/states.js';
import { DiskReserve } from './disk-reserve.js';
import { SystemVms } from './system-vms.js';
import { sweepWarmPool } from './lifecycle/warm-pool.js';
import { HostLease } from './lifecycle/host-lease.js';
import { SharedGarbage } from './lifecycle/shared-garbage.js';
import { qemuVersion } from './vmm/qemu-command.js';
import { imagesAndStorage } from './serve/images-and-storage.js';
import { serveApi } from './serve/serve-api.js';
import { startApiNode } from './serve/api-node.js';
import type { RunningServer } from './serve/running-server.js';

export { ConfigError, DEFAULT_API_LIMITS, loadConfig, type CapsuleConfig } from './config.js';
export type { RunningServer } from './serve/running-server.js';

export async function startServer(
  overrides: Partial<CapsuleConfig> = {},
  log: Logger = createLogger(),
): Promise<RunningServer> {
  const config = loadConfig(overrides);
  checkRole(config);
  if (config.role === 'api') return startApiNode(config, log);
  // QMP, agent and migration sockets live in <dataDir>/vms/<id>/; unix socket paths max out at 107 bytes
  const longestSocket = path.join(path.resolve(config.dataDir), 'vms', 'mvm-xxxxxxxxxxxxxxxx', 'run', 'incoming.sock');
  if (Buffer.byteLength(longestSocket) > 107) {
    throw new Error(
      `data dir path too long (${config.dataDir}): VM sockets under it would exceed the 107-byte unix socket ` +
        `limit; use a shorter --data-dir`,
    );
  }
  // root's: no VM uid can reach into it (jails see their own files only, bind-mounted)
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(config.dataDir, 'vms'), { recursive: true, mode: 0o700 });
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  log.info('store opened', { database: store.dialect });
  const runtimes = new RuntimeRegistry(config.cacheDir, config.dataDir, config.agentBundlePath);
  runtimes.load();
  log.info('runtimes loaded', { runtimes: runtimes.list().map((r) => `${r.name}@${r.hash}`) });

  const jailer = Jailer.create(
    { ...config, dataDir: path.resolve(config.dataDir), memoryOverheadMib: config.vmMemoryOverheadMib },
    log,
  );

  const accelerator = await decideAccelerator(config, runtimes, jailer);
  log.info(`accelerator: ${accelerator.accelerator}`, { reason: accelerator.reason });
  // registered before recovery: from here no other node gives this host up while it takes its VMs back
  const hostLease = await HostLease.register(
    store,
    {
      hostId: config.hostId,
      leaseMs: config.hostLeaseMs,
      dataDir: config.dataDir,
      accelerator: accelerator.accelerator,
      qemuVersion: qemuVersion(config.qemuBinary),
      maxMemoryMib: config.hostMaxMemoryMib,
    },
    config.advertiseUrl ?? `http://${config.host}:${config.port}`,
    log,
  );

  const metrics = new Metrics();
  const egressLogs = new EgressLogs(path.join(config.dataDir, 'egress-log'), (entry) =>
    metrics.egress.inc({ protocol: entry.protocol, verdict: entry.verdict }),
  );
  const networks = new VmNetworks(
    {
      pool: config.netPool,
      poolSize: config.netPoolSize,
      privateAllow: config.egressPrivateAllow,
      upstreams: dnsUpstreams(config.dnsUpstream ?? undefined),
      dataDir: path.resolve(config.dataDir),
      nameCheckedPorts: config.egressNamePorts,
      jailMakesTaps: !jailer.unsafe,
    },
    egressLogs,
    log,
  );
  // a crashed server's warm clones go first: each holds a namespace no record names
  await sweepWarmPool({ dataDir: config.dataDir, vmsDir: path.join(config.dataDir, 'vms'), store, jailer, log });
  // namespaces of VMs that may be re-adopted stay; every other one this data dir made goes
  const live = await store.listMicroVMsInStates([...LIVE_STATES], config.hostId);
  await networks.init(new Map(live.filter((r) => r.netSlot !== null).map((r) => [r.id, r.netSlot!])));
  const systemVms = new SystemVms(config.systemQuota, jailer);
  const snapshots = config.snapshots
    ? new ReadySnapshots(config, runtimes, accelerator.accelerator, systemVms, log, networks)
    : null;
  // one free-space reserve over every filesystem VMs, uploads, builds and snapshots write to
  const disk = new DiskReserve([config.dataDir, config.cacheDir, config.snapshotDir], config.diskReserve);
  const blobs = openBlobStore(config);
  const { images, storage } = imagesAndStorage({
    config,
    store,
    blobs,
    disk,
    systemVms,
    runtimes,
    accelerator: accelerator.accelerator,
    networks,
    hostId: config.hostId,
    log,
  });
  await images.recover();
  const service = new MicroVMService({
    config,
    store,
    runtimes,
    accelerator,
    jailer,
    snapshots,
    images,
    metrics,
    log,
    networks,
    egressLogs,
    disk,
    storage,
    hypervisor: qemuHypervisor,
    sharedBlobs: config.blobs ? blobs : null, // S3: every host reads it
    systemVmsBusy: () => {
      const now = systemVms.usage();
      return now.vms + now.waiting > 0;
    },
  });
  await service.recover();
  service.startPolicySweeper();
  storage.startRecording(); // what its VMs hold on its disk, for the other servers' storage quotas
  // S3: bases and suspended states nothing needs any more go (every host runs rounds)
  const garbage = config.blobs ? new SharedGarbage({ blobs, store, log }) : null;
  garbage?.start();
  const { url, adminKey, nodes, server, closeSessions } = await serveApi(
    config,
    store,
    { service, images, accelerator, metrics, usage: storage, runtimes, systemVms },
    log,
  );
  service.publicPort = Number(new URL(url).port);
  // a draining host moves its VMs to others: that needs the cluster key (to ask them) and shared blobs (the state)
  const drain =
    nodes && service.suspendedStates
      ? new HostDrain({
          store,
          hostId: config.hostId,
          log,
          nodes,
          suspend: (tenantId, id) => service.suspend(tenantId, id),
          publish: (record) => service.publishSuspended(record),
          forgetMoved: (record) => service.forgetMoved(record),
        })
      : null;
  let toldCannotMove = false;
  await hostLease.start(
    config.advertiseUrl ?? url,
    () => service.stopGivenUp(),
    (state) => {
      drain?.onState(state);
      if (!drain && state === 'draining' && !toldCannotMove)
        log.warn(
          'draining: this host takes no new MicroVMs, but cannot move its own without CAPSULE_CLUSTER_KEY ' +
            'and CAPSULE_BLOBS=s3://…',
        );
      toldCannotMove = state === 'draining';
    },
    () => service.launchReadiness(),
  );

  // one at a time, after start-up: a launch before its snapshot exists cold-boots and says so
  const defaultShape = { vcpuCount: config.defaultVcpuCount, memoryMib: config.defaultMemoryMib };
  const snapshotsBuilt = (async () => {
    for (const runtime of snapshots ? runtimes.list() : []) await snapshots!.ensure(runtime.name, defaultShape, true);
  })();
  // the warm pool fills once they are taken: clones restoring beside a snapshot VM make it a worse snapshot
  void snapshotsBuilt.then(
    () => service.startWarmPool(),
    () => service.startWarmPool(),
  );

  let closing: Promise<void> | null = null;
  return {
    url,
    config,
    runtimes,
    adminKey,
    accelerator,
    jailer,
    service,
    snapshotsBuilt,
    close() {
      closing ??= (async () => {
        await hostLease.stop();
        drain?.stop();
        storage.stopRecording();
        garbage?.stop();
        server.close();
        server.closeAllConnections();
        closeSessions();
        await service.shutdown();
        await snapshotsBuilt;
        await snapshots?.idle();
        await images.idle();
        await networks.close();
        await store.close();
      })();
      return closing;
    },
  };
}

// Building one image version: the builder VM makes its layer from the zip, a VM booted on the layer starts the
// app and is snapshotted once it is ready, and (when the image enables its validate hook) a VM restored from that
// snapshot must answer the hook before the version is SUCCESSFUL. Any failure names its step, removes what was
// built, and leaves the version FAILED with the reason.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ImageVersionRecord } from '../store/types.js';
import { captureSnapshot } from '../snapshots/capture.js';
import { hostLaunchOptions, Machine } from '../vmm/machine.js';
import { hookRequired, startApp, validateApp } from './app-start.js';
import { BuildLog } from './build-log.js';
import { BuildFailure, buildLayer, builderMemoryMib } from './builder.js';
import { guestRequest } from './guest-http.js';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RuntimeRegistry } from '../runtimes/registry.js';
import type { Store } from '../store/types.js';
import type { Accelerator } from '../vmm/qemu-args.js';
import type { BlobStore, Gzipped } from '../blobs/blob-store.js';
import type { SystemVms } from '../system-vms.js';
import type { VmNetworks } from '../network/vm-networks.js';
import { AppZip } from './zip.js';
import { type PageRanges, totalBytes, touchedRanges } from '../vmm/page-prefetch.js';

export interface VersionBuildDeps {
  config: CapsuleConfig;
  store: Store;
  /** Zips, layers and snapshots (QEMU gets local files of them through localFile). */
  blobs: BlobStore;
  runtimes: RuntimeRegistry;
  accelerator: Accelerator;
  log: Logger;
  /** Namespaces for builder VMs (null: builders get no network). */
  networks: VmNetworks | null;
  /** The tenant's storage figure is stale once a build wrote (or removed) its layer and snapshot. */
  storage: { forget(tenantId: string): void };
  /**
   * Builder, app-snapshot and validation VMs are the system's: they wait for room in its quota and run in its jails,
   * never a tenant's.
   */
  systemVms: SystemVms;
}

export const LAYER = 'layer.qcow2';
/** The manifest last: it is written once the others are in place. */
export const SNAPSHOT_FILES = ['snapshot/memory', 'snapshot/state', 'snapshot/disk.qcow2', 'snapshot/manifest.json'];
/** The snapshot's memory image: gzipped in S3 (mostly zeros), read back with `if-stored` (versions from before). */
const SNAPSHOT_MEMORY = 'snapshot/memory';
export const gzippedIn = (file: string): Gzipped => (file === SNAPSHOT_MEMORY ? 'if-stored' : false);
/** What a version's snapshot may hold in the blob store: its files, its memory gzipped. */
export const SNAPSHOT_OBJECTS = [...SNAPSHOT_FILES, `${SNAPSHOT_MEMORY}.gz`];
/** The memory pages the validate step touched (JSON PageRanges), read ahead by later launches. */
export const PREFETCH = 'snapshot/prefetch.json';
const WARM_TIMEOUT_MS = 10_000;

/** A version's artifact in the blob store: app.zip, layer.qcow2, snapshot/{memory,state,disk.qcow2,manifest.json}. */
export function artifactKey(v: Pick<ImageVersionRecord, 'tenantId' | 'name' | 'version'>, file: string): string {
  return `images/${v.tenantId}/${v.name}/${v.version}/${file}`;
}

function shapeOf(deps: VersionBuildDeps, record: ImageVersionRecord): { vcpuCount: number; memoryMib: number } {
  return {
    vcpuCount: record.plan.vcpuCount ?? deps.config.defaultVcpuCount,
    memoryMib: record.plan.memoryMib ?? deps.config.defaultMemoryMib,
  };
}

/** Build a version (queued by the image service, one at a time): PENDING → IN_PROGRESS → SUCCESSFUL or FAILED. */
export async function buildVersion(deps: VersionBuildDeps, record: ImageVersionRecord, dir: string): Promise<void> {
  const { tenantId, name, version } = record;
  const logFile = path.join(dir, 'build.log');
  const log = new BuildLog(logFile);
  // short: the builder VM's unix sockets live under it
  const work = path.join(deps.config.dataDir, 'b', randomBytes(4).toString('hex'));
  const started = Date.now();
  let zip: AppZip | null = null;
  try {
    await deps.store.updateImageVersion(tenantId, name, version, { state: 'IN_PROGRESS' });
    fs.mkdirSync(work, { recursive: true, mode: 0o700 });
    const appZip = await AppZip.open(await deps.blobs.localFile(artifactKey(record, 'app.zip')));
    zip = appZip; // closed in finally
    // the builder's uid is held for the build only (the app's snapshot VM gets its own)
    const layer = await deps.systemVms.run(
      `the build of ${name} version ${version}`,
      builderMemoryMib(record.plan),
      `build-${path.basename(work)}`,
      (jail) =>
        buildLayer({
          config: deps.config,
          runtime: deps.runtimes.get(record.runtime),
          accelerator: deps.accelerator,
          jail,
          zip: appZip,
          plan: record.plan,
          workDir: work,
          log: (text) => log.write(text),
          timeoutMs: deps.config.buildTimeoutMs,
          networks: deps.networks,
        }),
    );
    await deps.blobs.putFile(artifactKey(record, LAYER), layer);
    const layerPath = await deps.blobs.localFile(artifactKey(record, LAYER));
    log.write(`==> layer built in ${Date.now() - started} ms; starting the app for its ready snapshot\n`);
    const snapshotStarted = Date.now();
    await takeAppSnapshot(deps, record, layerPath, path.join(work, 's')).catch((err: Error) => {
      // the app's own failure (never ready, a refusing ready hook) is the step that failed
      throw new BuildFailure(
        `start: ${(record.plan.start ?? ['(no start command)']).join(' ')}`.slice(0, 200),
        err.message,
      );
    });
    log.write(`==> app ready and snapshotted in ${Date.now() - snapshotStarted} ms\n`);
    if (hookRequired(record.plan, 'validate')) {
      const validateStarted = Date.now();
      const touched = await validateSnapshot(deps, record, layerPath, path.join(work, 'v')).catch((err: Error) => {
        throw new BuildFailure('validate hook', err.message);
      });
      log.write(
        `==> validated on a VM restored from the snapshot in ${Date.now() - validateStarted} ms; it touched ` +
          `${(totalBytes(touched) / 2 ** 20).toFixed(1)} MiB of its memory (read ahead at launch)\n`,
      );
      if (touched.length > 0) await deps.blobs.put(artifactKey(record, PREFETCH), Buffer.from(JSON.stringify(touched)));
    }
    await deps.store.updateImageVersion(tenantId, name, version, {
      state: 'SUCCESSFUL',
      finishedAt: new Date().toISOString(),
    });
    deps.log.info('image built', { tenantId, name, version, ms: Date.now() - started });
  } catch (err) {
    const failure = err instanceof BuildFailure ? err : null;
    const reason = failure
      ? `${failure.message}${failure.outputTail ? `\n--- output (tail) ---\n${failure.outputTail}` : ''}`
      : `the build could not run: ${(err as Error).message}`;
    log.write(`==> FAILED: ${reason}\n`);
    for (const built of [LAYER, ...SNAPSHOT_OBJECTS, PREFETCH])
      await deps.blobs.delete(artifactKey(record, built)).catch(() => undefined);
    await deps.store.updateImageVersion(tenantId, name, version, {
      state: 'FAILED',
      failureReason: reason,
      failedStep: failure?.step ?? null,
      finishedAt: new Date().toISOString(),
    });
    deps.log.warn('image build failed', { tenantId, name, version, reason: reason.split('\n')[0] });
  } finally {
    zip?.close();
    log.close();
    fs.rmSync(work, { recursive: true, force: true });
    deps.storage.forget(tenantId); // a layer and a snapshot more, or the failed build's removed
  }
}

/**
 * Boot the built image, start its app, wait until it is ready (ready hook or port), warm it with one
 * request, and snapshot it: MicroVMs of this version then launch with the app already serving.
 */
async function takeAppSnapshot(
  deps: VersionBuildDeps,
  record: ImageVersionRecord,
  layerPath: string,
  work: string,
): Promise<void> {
  const { config } = deps;
  const plan = record.plan;
  const shape = shapeOf(deps, record);
  fs.mkdirSync(work, { mode: 0o700 });
  await deps.systemVms.run(
    `the app snapshot of ${record.name} version ${record.version}`,
    shape.memoryMib,
    `snapshot-${path.basename(path.dirname(work))}`,
    (jail) =>
      captureSnapshot(
        work,
        {
          ...hostLaunchOptions(config, deps.runtimes.get(record.runtime)),
          baseDisk: layerPath,
          ...shape,
          accelerator: deps.accelerator,
          hostname: 'capsule',
          jail,
        },
        async (machine) => {
          await startApp(machine.agent, plan, plan.env, config.appReadyTimeoutMs);
          // one GET / before the snapshot, so a clone's first real request finds everything warm
          if (plan.port !== null)
            await guestRequest(machine.agent, plan.port, 'GET', '/', '', WARM_TIMEOUT_MS).catch(() => undefined);
        },
        { image: record.name, version: record.version, ...shape },
        deps.networks,
      ),
  );
  // the manifest last: a snapshot without one is not used
  for (const file of SNAPSHOT_FILES)
    await deps.blobs.putFile(artifactKey(record, file), path.join(work, path.basename(file)), {
      gzipped: file === SNAPSHOT_MEMORY,
    });
}

/**
 * Restore a VM from the version's stored snapshot, as a launch would, and ask its validate hook until it answers
 * 200 (503: not yet) within the hook's timeout; then the memory pages it touched, for launches to read ahead.
 */
async function validateSnapshot(
  deps: VersionBuildDeps,
  record: ImageVersionRecord,
  layerPath: string,
  vmDir: string,
): Promise<PageRanges> {
  const [memoryPath, statePath, diskPath] = await Promise.all(
    SNAPSHOT_FILES.slice(0, 3).map((file) =>
      deps.blobs.localFile(artifactKey(record, file), { gzipped: gzippedIn(file) }),
    ),
  );
  const shape = shapeOf(deps, record);
  const owner = `validate-${path.basename(path.dirname(vmDir))}`;
  return deps.systemVms.run(
    `the validation of ${record.name} version ${record.version}`,
    shape.memoryMib,
    owner,
    async (jail) => {
      // restored into a namespace of its own, as a clone is (its NIC is a tap), with no egress
      const net = deps.networks
        ? await deps.networks.attach(owner, { egress: 'none', allow: [], deny: [] }, { logEgress: false })
        : null;
      try {
        const machine = await Machine.launch({
          ...hostLaunchOptions(deps.config, deps.runtimes.get(record.runtime)),
          baseDisk: layerPath,
          ...shape,
          accelerator: deps.accelerator,
          hostname: 'capsule',
          jail,
          netns: net?.netns,
          vmDir,
          restore: { kind: 'snapshot', memoryPath, statePath, diskPath },
        });
        try {
          await validateApp(machine.agent, record.plan);
          // what the guest touched since its restore: the pages a launch needs first (unreadable: none recorded)
          try {
            return touchedRanges(machine.pid, memoryPath);
          } catch (err) {
            deps.log.warn('the pages validate touched could not be read', { error: (err as Error).message });
            return [];
          }
        } finally {
          await machine.stop();
        }
      } finally {
        await deps.networks?.release(owner, null);
      }
    },
  );
}

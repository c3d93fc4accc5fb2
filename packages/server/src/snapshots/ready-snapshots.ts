// Ready snapshots: one per runtime (and VM shape), taken once the guest agent answers, so a launch is a
// restore (~0.1 s) instead of a boot (~5 s under TCG). Kept in the machine-wide cache next to the
// runtimes, keyed by everything that shapes guest memory: runtime build, agent bundle, vCPUs, memory.
// Files are frozen once the directory is renamed into place; a half-built snapshot is never visible.
//
// Every file is root's and read-only once taken: clones open the memory file read-only and map it
// privately (QEMU's readonly=on,rom=off), and see it only through a read-only bind mount in their jail.
import { Mutex } from 'async-mutex';
import fs from 'node:fs';
import type { VmShape } from '@capsule/protocol';
import type { SystemVms } from '../system-vms.js';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Runtime, RuntimeRegistry } from '../runtimes/registry.js';
import type { Accelerator } from '../vmm/qemu-args.js';
import { hostLaunchOptions, type SnapshotFiles } from '../vmm/machine.js';
import { qemuVersion } from '../vmm/qemu-command.js';
import { allocatedBytes } from '../jail/vm-files.js';
import { captureSnapshot, snapshotFilesIn, verifySnapshot } from './capture.js';
import type { VmNetworks } from '../network/vm-networks.js';

/**
 * Bump when what a snapshot contains changes shape (QEMU device layout, agent restore contract).
 * 3: the NIC on a tap in a namespace; 4: root's read-only files, QEMU version in the key; 5: qboot firmware.
 */
const SNAPSHOT_FORMAT = 5;

export interface ReadySnapshot extends SnapshotFiles, VmShape {
  kind: 'snapshot';
  key: string;
  runtime: string;
}

/** Builds waiting in line at most; past that a new shape just cold-boots (a shape storm costs no snapshot VMs). */
const MAX_QUEUED_BUILDS = 2;

export class ReadySnapshots {
  private readonly dir: string;
  private readonly building = new Map<string, Promise<ReadySnapshot | null>>();
  /** One snapshot VM at a time: they count toward no tenant's quota, so they must not crowd the host. */
  /** Snapshot VMs are built one at a time. */
  private readonly builds = new Mutex();

  constructor(
    private readonly config: CapsuleConfig,
    private readonly runtimes: RuntimeRegistry,
    private readonly accelerator: Accelerator,
    /**
     * Snapshot VMs are the system's: they wait for room in its quota and run in its jails (null: only for reading
     * snapshots, never building them).
     */
    private readonly systemVms: SystemVms | null,
    private readonly log: Logger,
    /** Snapshot VMs run in a namespace (null: they get none). */
    private readonly networks: VmNetworks | null = null,
  ) {
    this.dir = config.snapshotDir;
    // a device state loads only into the QEMU version that saved it (microvm has no versioned machine types)
    this.suffix = `-q${qemuVersion(config.qemuBinary)}-v${SNAPSHOT_FORMAT}`;
  }

  private readonly suffix: string;

  private key(runtime: Runtime, shape: VmShape): string {
    // the initrd name carries the runtime hash and the agent bundle hash; operator kernel args shape the guest too
    const extra = this.config.extraKernelArgs
      ? `-k${createHash('sha256').update(this.config.extraKernelArgs).digest('hex').slice(0, 8)}`
      : '';
    const shaped = `${shape.vcpuCount}c-${shape.memoryMib}m-${this.accelerator}`;
    return `${path.basename(runtime.initrdPath, '.img')}-${shaped}${extra}${this.suffix}`;
  }

  /** A complete snapshot for this runtime and shape, or null (the caller cold-boots). */
  get(runtimeName: string, { vcpuCount, memoryMib }: VmShape): ReadySnapshot | null {
    const shape = { vcpuCount, memoryMib };
    const runtime = this.runtimes.get(runtimeName);
    const key = this.key(runtime, shape);
    const dir = path.join(this.dir, key);
    if (!fs.existsSync(path.join(dir, 'manifest.json'))) return null;
    return { kind: 'snapshot', key, runtime: runtimeName, ...shape, ...snapshotFilesIn(dir) };
  }

  /** A launch used it: the least recently used are pruned first (pruneShapes). */
  touch(snapshot: ReadySnapshot): void {
    const now = new Date();
    try {
      fs.utimesSync(path.join(this.dir, snapshot.key), now, now);
    } catch {
      // pruned or discarded meanwhile
    }
  }

  /**
   * Are the snapshot's files still what was taken? A restore can fail for reasons that are not the
   * snapshot's (host load, a QEMU crash); only a snapshot that no longer verifies is thrown away.
   */
  verify(snapshot: ReadySnapshot): boolean {
    return verifySnapshot(snapshot);
  }

  /** Throw a snapshot away (it failed to restore); the next ensure() rebuilds it. */
  invalidate(snapshot: ReadySnapshot): void {
    this.log.warn('discarding ready snapshot', { key: snapshot.key });
    const dir = path.join(this.dir, snapshot.key);
    const trash = `${dir}.discarded-${process.pid}-${Date.now()}`;
    try {
      fs.renameSync(dir, trash);
      fs.rmSync(trash, { recursive: true, force: true });
    } catch {
      // another server already discarded it
    }
  }

  /**
   * Build the snapshot unless it exists; concurrent callers share one build. Never throws. `always`: queue it even when
   * the line is full.
   */
  ensure(runtimeName: string, { vcpuCount, memoryMib }: VmShape, always = false): Promise<ReadySnapshot | null> {
    // only the shape: callers pass whole records, and nothing else of theirs may reach the launch
    const shape = { vcpuCount, memoryMib };
    const existing = this.get(runtimeName, shape);
    if (existing) return Promise.resolve(existing);
    const key = this.key(this.runtimes.get(runtimeName), shape);
    let build = this.building.get(key);
    if (!build) {
      // a shape storm queues no more than a couple; the start-up snapshots of the default shape always queue
      if (!always && this.building.size >= MAX_QUEUED_BUILDS + 1) return Promise.resolve(null);
      const run = (): Promise<ReadySnapshot | null> => this.build(runtimeName, shape, key);
      build = this.builds.runExclusive(run).catch((err: Error) => {
        this.log.error('ready snapshot build failed', { key, error: err.message });
        return null;
      });
      this.building.set(key, build);
      void build.finally(() => this.building.delete(key));
    }
    return build;
  }

  /** Wait for any builds in flight (server shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.building.values());
  }

  /**
   * Snapshots of this runtime from older builds (runtime or agent changed) are dead weight: ~170 MB each.
   * Other shapes of the current build stay.
   */
  private pruneOlder(runtime: Runtime): void {
    const cutoffMs = Date.now() - 60 * 60 * 1000; // leave a recently used one to a server still running older code
    const current = `${path.basename(runtime.initrdPath, '.img')}-`;
    for (const entry of fs.readdirSync(this.dir)) {
      if ((entry.startsWith(current) && entry.endsWith(this.suffix)) || !entry.startsWith(`${runtime.name}-`)) continue;
      const dir = path.join(this.dir, entry);
      if (fs.statSync(dir).mtimeMs < cutoffMs) fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * The current build's snapshots of a runtime, one per shape, are bounded by count and bytes: the least
   * recently used go first (never `keep`, the one just taken). A VM launched from a pruned one keeps its
   * hard-linked base; at worst a later launch of that shape cold-boots and takes it again.
   */
  private pruneShapes(runtime: Runtime, keep: string): void {
    const current = `${path.basename(runtime.initrdPath, '.img')}-`;
    const shapes = fs
      .readdirSync(this.dir)
      .filter((entry) => entry.startsWith(current) && entry.endsWith(this.suffix))
      .map((entry) => {
        const dir = path.join(this.dir, entry);
        const bytes = fs.readdirSync(dir).reduce((n, f) => n + allocatedBytes(path.join(dir, f)), 0);
        return { entry, dir, bytes, usedMs: entry === keep ? Infinity : fs.statSync(dir).mtimeMs };
      })
      .sort((a, b) => b.usedMs - a.usedMs);
    let count = 0;
    let bytes = 0;
    for (const shape of shapes) {
      count += 1;
      bytes += shape.bytes;
      if (
        shape.entry === keep ||
        (count <= this.config.snapshotsPerRuntime && bytes <= this.config.snapshotBytesPerRuntime)
      )
        continue;
      this.log.info('pruning a ready snapshot (least recently used)', { key: shape.entry });
      fs.rmSync(shape.dir, { recursive: true, force: true });
    }
  }

  private async build(runtimeName: string, shape: VmShape, key: string): Promise<ReadySnapshot | null> {
    const runtime = this.runtimes.get(runtimeName);
    const started = Date.now();
    const finalDir = path.join(this.dir, key);
    // short: unix socket paths inside it must stay under 108 bytes
    const tmp = path.join(
      this.dir,
      `.build-${createHash('sha256').update(key).digest('hex').slice(0, 12)}-${process.pid}`,
    );
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(tmp, { mode: 0o700 });
    try {
      if (!this.systemVms)
        throw new Error('these ready snapshots are read-only: no system VMs were given to build them in');
      await this.systemVms.run(`the ready snapshot ${key}`, shape.memoryMib, `snapshot-${key}`, (jail) =>
        captureSnapshot(
          tmp,
          {
            ...hostLaunchOptions(this.config, runtime),
            ...shape,
            accelerator: this.accelerator,
            hostname: 'capsule',
            jail,
          },
          async () => undefined,
          { key, runtime: runtimeName, ...shape },
          this.networks,
        ),
      );
      fs.chmodSync(tmp, 0o755);
      try {
        fs.renameSync(tmp, finalDir);
      } catch (err) {
        // another server finished the same snapshot first: theirs is as good as ours
        if (!fs.existsSync(path.join(finalDir, 'manifest.json'))) throw err;
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      this.log.info('ready snapshot taken', { key, ms: Date.now() - started });
      this.pruneOlder(runtime);
      this.pruneShapes(runtime, key);
      return this.get(runtimeName, shape);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }
}

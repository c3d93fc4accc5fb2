// The warm pool: clones of each target (pool-targets.ts: every runtime at the default shape, and the tenants'
// images named in CAPSULE_WARM_POOL_IMAGES) restored from its snapshot and warmed up ahead (namespace, jail,
// QEMU, agent, a first command), then paused: zero CPU while they wait. A launch of a target's source at its
// shape claims one (launch.ts) instead of restoring: the clone already has its final id (its hostname and
// MAC), and the claim moves it into its tenant's cgroup, puts the launch's egress policy in force, runs it
// and gives it fresh entropy and the clock again, so pooled clones differ exactly as restored ones do. The
// pool refills in the background, one clone at a time; it is its own system quota (never a tenant's), and it
// drains when host memory runs low; clones of an image version that is no longer its newest are stopped.
// Clones are nobody's until claimed: no record names them, so each leaves a marker (<data-dir>/pool/<id>)
// and a crashed server's clones are swept at the next start (sweepWarmPool, before the namespaces are).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveNetworkPolicy, sameShape, type VmShape } from '@capsule/protocol';
import { POOL_TENANT, type Jailer } from '../jail/jailer.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { Store } from '../store/types.js';
import { isQemuProcessOf } from '../vmm/machine.js';
import type { Vm } from '../vmm/vm.js';
import { launchOptions, type BootDeps } from './boot.js';
import type { VmNetworkPort } from './network-ops.js';
import { newMicroVMId } from './records.js';
import type { LaunchSourceDeps } from './launch-source.js';
import { type PoolTarget, poolTargets, type ResolvedTarget, resolveTarget } from './pool-targets.js';
import type { ServiceDeps } from './service-deps.js';

/** How often the pool looks at its size and the host's free memory. */
const TICK_MS = 1000;
/** After a clone failed to start, the next try waits this long (a broken snapshot must not spin QEMUs). */
const FAILURE_BACKOFF_MS = 30_000;
/** Commands a new clone runs, then how long it idles, before it is paused (measured: bench/warm-pool.ts). */
const WARM_UP_COMMANDS = 2;
const WARM_UP_SETTLE_MS = 1000;
/** The policy a clone waits with; its launch's own is put in force when it is claimed. */
const NO_EGRESS = resolveNetworkPolicy({ egress: 'none' });

/** A clone ready to be claimed. */
export interface PooledClone {
  id: string;
  /** Its target's key (pool-targets.ts). */
  key: string;
  shape: VmShape;
  /** The image version it is a clone of (null: a runtime's). */
  version: number | null;
  jailUid: number | null;
  netSlot: number;
  machine: Vm;
}

export interface WarmPoolDeps extends LaunchSourceDeps {
  targets: PoolTarget[];
  /** The memory (MiB) the pool leaves free on the host. */
  minAvailableMib: number;
  /** A runtime's clones' shape (the default). */
  shape: VmShape;
  dataDir: string;
  snapshots: Pick<ReadySnapshots, 'get'>;
  jailer: Jailer;
  networks: Pick<VmNetworkPort, 'attach' | 'release'>;
  bootDeps: BootDeps;
  metrics: Metrics;
  log: Logger;
  /**
   * System VMs run now: no clone is made meanwhile. A snapshot taken while a clone's restore competes for the
   * CPU captures a guest that has not settled, and every clone of it pays (measured: fix-up 550 ms, not 360).
   */
  systemVmsBusy?: () => boolean;
  /** The host's available memory now, in MiB (MemAvailable; a fake in unit tests). */
  memAvailableMib?: () => number;
}

/** Where clones leave their markers. */
function poolDir(dataDir: string): string {
  return path.join(dataDir, 'pool');
}

interface Marker {
  jailUid: number | null;
  /** Its QEMU, once started (an unjailed one has no cgroup to find it by). */
  pid: number | null;
}

function hostMemAvailableMib(): number {
  const kb = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return kb ? Number(kb) / 1024 : 0;
}

/** The MicroVM service's warm pool, from its configuration; null when it keeps no clone of anything. */
export function warmPoolOf(deps: ServiceDeps, bootDeps: BootDeps): WarmPool | null {
  const { config } = deps;
  // runtimes' clones restore their ready snapshots, images' their app snapshots
  const targets = poolTargets(
    deps.snapshots ? config.warmPoolSize : 0,
    deps.runtimes.list().map((r) => r.name),
    deps.images ? config.warmPoolImages : [],
  );
  if (targets.length === 0) return null;
  return new WarmPool({
    targets,
    minAvailableMib: config.warmPoolMinAvailableMib,
    shape: { vcpuCount: config.defaultVcpuCount, memoryMib: config.defaultMemoryMib },
    dataDir: config.dataDir,
    runtimes: deps.runtimes,
    images: deps.images,
    snapshots: deps.snapshots ?? { get: () => null },
    jailer: deps.jailer,
    networks: deps.networks,
    bootDeps,
    metrics: deps.metrics,
    log: deps.log,
    systemVmsBusy: deps.systemVmsBusy,
  });
}

export class WarmPool {
  /** Per target key, its clones, oldest first. */
  private readonly clones = new Map<string, PooledClone[]>();
  private filling: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private retryAt = 0;
  private lowMemory = false;
  private readonly memAvailableMib: () => number;

  constructor(private readonly deps: WarmPoolDeps) {
    this.memAvailableMib = deps.memAvailableMib ?? hostMemAvailableMib;
  }

  /** Fill it, and keep it filled (or drained, when memory is short) until close(). */
  start(): void {
    if (this.deps.targets.length === 0 || this.closed || this.timer) return;
    fs.mkdirSync(poolDir(this.deps.dataDir), { recursive: true, mode: 0o700 });
    this.timer = setInterval(() => this.kick(), TICK_MS);
    this.timer.unref();
    this.kick();
  }

  /** The targets with a clone ready now. */
  readyKeys(): string[] {
    return [...this.clones].filter(([, clones]) => clones.length > 0).map(([key]) => key);
  }

  /** How many clones of the target `key` are ready now. */
  count(key: string): number {
    return this.clones.get(key)?.length ?? 0;
  }

  /**
   * A ready clone of the target `key` (pool-targets.ts: poolKeyOf) for a launch of `shape` and image
   * `version`, or null: the launch restores as before (a miss, when the pool serves that target).
   */
  take(key: string, shape: VmShape, version: number | null): PooledClone | null {
    const target = this.deps.targets.find((t) => t.key === key);
    // a runtime's clones are of the default shape only: another shape is no launch the pool could serve
    if (!target || (target.kind === 'runtime' && !sameShape(shape, this.deps.shape))) return null;
    const list = this.list(key);
    const at = list.findIndex((c) => c.version === version && sameShape(c.shape, shape));
    const clone = at < 0 ? null : list.splice(at, 1)[0]!;
    this.deps.metrics.poolClaims.inc({ pool: key, result: clone ? 'hit' : 'miss' });
    this.gauge(key);
    return clone;
  }

  /** A clone taken for a launch that was refused before it ran (its tenant's quota): back, as it was. */
  async giveBack(clone: PooledClone): Promise<void> {
    if (this.closed || !clone.machine.isRunning) return this.destroy(clone);
    this.list(clone.key).unshift(clone);
    this.gauge(clone.key);
  }

  /** A MicroVM record names the clone now: it is the lifecycle's, and its marker goes. */
  claimed(clone: PooledClone): void {
    fs.rmSync(path.join(poolDir(this.deps.dataDir), clone.id), { force: true });
  }

  /** Stop every clone (server shutdown): they are not re-adopted, the next server makes its own. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.filling;
    const all = [...this.clones.values()].flat();
    this.clones.clear();
    await Promise.all(all.map((c) => this.destroy(c)));
  }

  private kick(): void {
    if (this.filling || this.closed) return;
    this.filling = this.topUp()
      .catch((err: Error) => this.deps.log.error('warm pool upkeep failed', { error: err.message }))
      .finally(() => (this.filling = null));
  }

  private async topUp(): Promise<void> {
    const { shape, minAvailableMib, log } = this.deps;
    const available = this.memAvailableMib();
    if (available < minAvailableMib) {
      // one clone per tick, oldest first, until there is room again
      const victim = [...this.clones.values()].map((list) => list[0]).find(Boolean);
      if (!this.lowMemory)
        log.warn('host memory is low: draining the warm pool', { availableMib: Math.round(available) });
      this.lowMemory = true;
      if (victim) {
        this.deps.metrics.poolDrains.inc();
        await this.discard(victim);
      }
      return;
    }
    this.lowMemory = false;
    if (Date.now() < this.retryAt) return;
    for (const target of this.deps.targets) {
      if (this.closed) return;
      const resolved = await resolveTarget(target, { ...this.deps, shape });
      // clones of what is no longer the target's newest (an image version deleted or superseded) go
      for (const stale of this.list(target.key).filter((c) => c.version !== resolved?.version))
        await this.discard(stale);
      while (resolved && !this.closed && this.count(target.key) < target.size) {
        // a clone may come to use all of its guest memory: only with that much room above the floor
        if (this.memAvailableMib() < minAvailableMib + resolved.shape.memoryMib) return;
        if (this.deps.systemVmsBusy?.()) return;
        let clone: PooledClone;
        try {
          clone = await this.make(target.key, resolved);
        } catch (err) {
          this.deps.metrics.poolFills.inc({ result: 'failed' });
          this.retryAt = Date.now() + FAILURE_BACKOFF_MS;
          log.warn('could not make a warm pool clone; trying again later', {
            pool: target.key,
            retryInMs: FAILURE_BACKOFF_MS,
            error: (err as Error).message.split('\n')[0],
          });
          return;
        }
        this.deps.metrics.poolFills.inc({ result: 'ok' });
        if (this.closed) return this.destroy(clone);
        this.list(target.key).push(clone);
        this.gauge(target.key);
        // a clone that dies while it waits (killed, OOM) leaves the pool at once; a claimed one is not the pool's
        clone.machine.onUnexpectedExit((reason) => {
          if (!this.list(clone.key).includes(clone)) return;
          log.warn('a warm pool clone died while it waited', { pool: clone.key, reason });
          void this.discard(clone);
        });
      }
    }
  }

  /** A clone: its id, uid and marker first (a crash from here leaves nothing a restart cannot find). */
  private async make(key: string, { source, restore, shape, version }: ResolvedTarget): Promise<PooledClone> {
    const { jailer, networks, dataDir } = this.deps;
    const id = newMicroVMId();
    const marker = path.join(poolDir(dataDir), id);
    const jailUid = jailer.claimUid(id);
    const mark = (m: Marker): void => fs.writeFileSync(marker, JSON.stringify(m), { mode: 0o600 });
    mark({ jailUid, pid: null });
    let netSlot: number | null = null;
    try {
      const net = await networks.attach(id, NO_EGRESS);
      netSlot = net.slot;
      const options = launchOptions(
        this.deps.bootDeps,
        { id, tenantId: POOL_TENANT, jailUid, ...shape },
        source,
        net.netns,
      );
      const machine = await this.deps.bootDeps.hypervisor.launch({ ...options, restore });
      mark({ jailUid, pid: machine.pid });
      try {
        // a restored guest is slow for about a second (TCG translating its paths anew, its deferred work
        // after the restore): that is spent here, not in the claimed VM's first commands
        for (let i = 0; i < WARM_UP_COMMANDS; i++) await machine.agent.exec({ command: ['true'] }).result;
        await machine.agent.setClock(); // what its claim asks first
        await sleep(WARM_UP_SETTLE_MS);
        await machine.hold();
      } catch (err) {
        await machine.stop().catch(() => undefined);
        throw err;
      }
      return { id, key, shape, version, jailUid, netSlot, machine };
    } catch (err) {
      if (netSlot !== null) await networks.release(id, netSlot);
      jailer.releaseUid(jailUid, id);
      fs.rmSync(marker, { force: true });
      throw err;
    }
  }

  private async destroy(clone: PooledClone): Promise<void> {
    await clone.machine.stop().catch(() => undefined);
    await this.deps.networks.release(clone.id, clone.netSlot);
    this.deps.jailer.releaseUid(clone.jailUid, clone.id);
    fs.rmSync(path.join(poolDir(this.deps.dataDir), clone.id), { force: true });
  }

  private list(key: string): PooledClone[] {
    let list = this.clones.get(key);
    if (!list) this.clones.set(key, (list = []));
    return list;
  }

  /** Out of the pool, and stopped. */
  private async discard(clone: PooledClone): Promise<void> {
    const list = this.list(clone.key);
    list.splice(list.indexOf(clone), 1);
    this.gauge(clone.key);
    await this.destroy(clone);
  }

  private gauge(key: string): void {
    this.deps.metrics.poolClones.set({ pool: key }, this.count(key));
  }
}

/**
 * At start, before the namespaces are swept: a crashed server's clones (those its markers name: another
 * server's pool on this machine is not ours) are killed with everything in their cgroups, or by the pid
 * the marker names when unjailed, and their files removed; a clone a record names was mid-claim (its
 * record is PENDING: recovery fails it and removes its files).
 */
export async function sweepWarmPool(ctx: {
  dataDir: string;
  vmsDir: string;
  store: Pick<Store, 'getMicroVM'>;
  jailer: Pick<Jailer, 'cgroupOf'>;
  log: Logger;
}): Promise<void> {
  const dir = poolDir(ctx.dataDir);
  const ids = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  for (const id of ids) {
    const vmDir = path.join(ctx.vmsDir, id);
    let marker: Marker = { jailUid: null, pid: null };
    try {
      marker = JSON.parse(fs.readFileSync(path.join(dir, id), 'utf8')) as Marker;
    } catch {
      // written in part: the clone never started
    }
    if (marker.pid !== null && isQemuProcessOf(marker.pid, vmDir)) {
      try {
        process.kill(marker.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await ctx.jailer.cgroupOf({ tenantId: POOL_TENANT, jailUid: marker.jailUid })?.remove();
    if (!(await ctx.store.getMicroVM(id))) fs.rmSync(vmDir, { recursive: true, force: true });
    fs.rmSync(path.join(dir, id), { force: true });
  }
  if (ids.length > 0) ctx.log.warn('removed the warm pool clones a previous server left', { clones: ids.length });
}

// The warm pool: per runtime, CAPSULE_WARM_POOL_SIZE clones of its ready snapshot at the default shape,
// restored and fixed up ahead (namespace, jail, QEMU, agent), then paused: zero CPU while they wait. A
// launch that fits claims one (launch.ts) instead of restoring: the clone already has its final id (its
// hostname and MAC), and the claim moves it into its tenant's cgroup, puts the launch's egress policy in
// force, runs it and gives it fresh entropy and the clock again, so pooled clones differ exactly as
// restored ones do. The pool refills in the background, one clone at a time; it is its own system quota
// (never a tenant's), and it drains when host memory runs low. Clones are nobody's until claimed: no
// record names them, so each leaves a marker (<data-dir>/pool/<id>) and a crashed server's clones are
// swept at the next start (sweepWarmPool, before the namespaces are).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveNetworkPolicy, type VmShape } from '@capsule/protocol';
import { POOL_TENANT, type Jailer } from '../jail/jailer.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Runtime, RuntimeRegistry } from '../runtimes/registry.js';
import type { ReadySnapshot, ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { Store } from '../store/types.js';
import { isQemuProcessOf } from '../vmm/machine.js';
import type { Vm } from '../vmm/vm.js';
import { launchOptions, type BootDeps } from './boot.js';
import type { VmNetworkPort } from './network-ops.js';
import { newMicroVMId } from './records.js';

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
  runtime: string;
  shape: VmShape;
  jailUid: number | null;
  netSlot: number;
  machine: Vm;
}

export interface WarmPoolDeps {
  /** Clones per runtime, and the memory (MiB) the pool leaves free on the host. */
  size: number;
  minAvailableMib: number;
  shape: VmShape;
  dataDir: string;
  runtimes: Pick<RuntimeRegistry, 'list'>;
  snapshots: Pick<ReadySnapshots, 'get'>;
  jailer: Jailer;
  networks: Pick<VmNetworkPort, 'attach' | 'release'>;
  bootDeps: BootDeps;
  metrics: Metrics;
  log: Logger;
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

export class WarmPool {
  /** Per runtime, its clones, oldest first. */
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
    if (this.deps.size === 0) return;
    fs.mkdirSync(poolDir(this.deps.dataDir), { recursive: true, mode: 0o700 });
    this.timer = setInterval(() => this.kick(), TICK_MS);
    this.timer.unref();
    this.kick();
  }

  /** How many clones of `runtime` are ready now. */
  count(runtime: string): number {
    return this.clones.get(runtime)?.length ?? 0;
  }

  /**
   * A ready clone of `runtime` for a launch of `shape`, or null: the launch restores as before (a miss,
   * when the pool serves that runtime and shape but had none ready).
   */
  take(runtime: string, shape: VmShape): PooledClone | null {
    const { size, shape: pooled } = this.deps;
    if (size === 0 || shape.vcpuCount !== pooled.vcpuCount || shape.memoryMib !== pooled.memoryMib) return null;
    const clone = this.clones.get(runtime)?.shift() ?? null;
    this.deps.metrics.poolClaims.inc({ runtime, result: clone ? 'hit' : 'miss' });
    this.gauge(runtime);
    return clone;
  }

  /** A clone taken for a launch that was refused before it ran (its tenant's quota): back, as it was. */
  async giveBack(clone: PooledClone): Promise<void> {
    if (this.closed || !clone.machine.isRunning) return this.destroy(clone);
    this.list(clone.runtime).unshift(clone);
    this.gauge(clone.runtime);
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
    const { size, shape, minAvailableMib, log } = this.deps;
    const available = this.memAvailableMib();
    if (available < minAvailableMib) {
      // one clone per tick, oldest first, until there is room again
      const victim = [...this.clones.values()].map((list) => list[0]).find(Boolean);
      if (!this.lowMemory)
        log.warn('host memory is low: draining the warm pool', { availableMib: Math.round(available) });
      this.lowMemory = true;
      if (victim) {
        this.list(victim.runtime).shift();
        this.gauge(victim.runtime);
        this.deps.metrics.poolDrains.inc();
        await this.destroy(victim);
      }
      return;
    }
    this.lowMemory = false;
    if (Date.now() < this.retryAt) return;
    for (const runtime of this.deps.runtimes.list()) {
      while (!this.closed && this.count(runtime.name) < size) {
        const snapshot = this.deps.snapshots.get(runtime.name, shape);
        // a clone may come to use all of its guest memory: only with that much room above the floor
        if (!snapshot || this.memAvailableMib() < minAvailableMib + shape.memoryMib) break;
        let clone: PooledClone;
        try {
          clone = await this.make(runtime, snapshot);
        } catch (err) {
          this.deps.metrics.poolFills.inc({ result: 'failed' });
          this.retryAt = Date.now() + FAILURE_BACKOFF_MS;
          log.warn('could not make a warm pool clone; trying again later', {
            runtime: runtime.name,
            retryInMs: FAILURE_BACKOFF_MS,
            error: (err as Error).message.split('\n')[0],
          });
          return;
        }
        this.deps.metrics.poolFills.inc({ result: 'ok' });
        if (this.closed) return this.destroy(clone);
        this.list(runtime.name).push(clone);
        this.gauge(runtime.name);
      }
    }
  }

  /** A clone: its id, uid and marker first (a crash from here leaves nothing a restart cannot find). */
  private async make(runtime: Runtime, snapshot: ReadySnapshot): Promise<PooledClone> {
    const { jailer, networks, shape, dataDir } = this.deps;
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
        { runtime, image: null },
        net.netns,
      );
      const machine = await this.deps.bootDeps.hypervisor.launch({ ...options, restore: snapshot });
      mark({ jailUid, pid: machine.pid });
      try {
        // a restored guest is slow for about a second (TCG translating its paths anew, its deferred work
        // after the restore): that is spent here, not in the claimed VM's first commands
        for (let i = 0; i < WARM_UP_COMMANDS; i++) await machine.agent.exec({ command: ['true'] }).result;
        await sleep(WARM_UP_SETTLE_MS);
        await machine.hold();
      } catch (err) {
        await machine.stop().catch(() => undefined);
        throw err;
      }
      return { id, runtime: runtime.name, shape, jailUid, netSlot, machine };
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

  private list(runtime: string): PooledClone[] {
    let list = this.clones.get(runtime);
    if (!list) this.clones.set(runtime, (list = []));
    return list;
  }

  private gauge(runtime: string): void {
    this.deps.metrics.poolClones.set({ runtime }, this.count(runtime));
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

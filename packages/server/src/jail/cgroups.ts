// Per-VM cgroups under `capsule/<tenant>/<vm>`: memory (guest RAM + QEMU's overhead), CPU (vCPUs and a
// margin), pids, and an I/O weight where the host has one. cgroup v1 (a hierarchy per controller, as on
// this host) and v2 (one unified tree) are both handled; which one is detected at start-up. The jail's
// launcher writes its own pid into `procsFiles()` before it execs QEMU, so QEMU never runs outside.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

export interface VmLimits {
  memoryMib: number;
  /** CPU time per wall-clock time, in thousandths of a core (1200 = 1.2 cores). */
  cpuMillicores: number;
  pidsMax: number;
}

export interface CgroupUsage {
  cpuSeconds: number;
  memoryBytes: number;
  memoryPeakBytes: number;
}

const CPU_PERIOD_US = 100_000;
/**
 * CPU weight (v1 cpu.shares, v2 cpu.weight) while a VM starts — its restore, fix-ups and its owner's first
 * commands — and once settled: the most there is, then the default. Only a contended CPU sees it, among the
 * tenant's own VMs: the vCPU limit (cpu quota) holds either way. Idle guests wake their QEMU tens of times a
 * second each, and each wake-up of another VM preempts a starting one: measured with 100 idle VMs, a launch
 * took ~1600 ms at equal weights and ~1400 ms with this ratio (bench/scaling.ts has the curve).
 */
const CPU_WEIGHT = { v1: { starting: 262_144, settled: 1024 }, v2: { starting: 10_000, settled: 100 } } as const;
export type CpuPriority = 'starting' | 'settled';
const IO_WEIGHT = 100;
const V1_REQUIRED = ['memory', 'cpu', 'pids'] as const;
const V1_OPTIONAL = ['cpuacct', 'blkio'] as const;
type V1Controller = (typeof V1_REQUIRED)[number] | (typeof V1_OPTIONAL)[number];

/** A cgroup path component from any id: safe characters only, never `.` or `..`. */
export function cgroupName(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return safe === '' ? '_' : safe;
}

function write(file: string, value: string): void {
  fs.writeFileSync(file, value);
}

function readNumber(file: string): number {
  return Number(fs.readFileSync(file, 'utf8').trim());
}

/** `key value` lines (memory.events, cpu.stat, memory.oom_control). */
function readKeyed(file: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(fs.readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export class Cgroups {
  private constructor(
    readonly version: 1 | 2,
    /** v1: controller → its hierarchy's mount; v2: the unified root under `unified`. */
    private readonly roots: Partial<Record<V1Controller | 'unified', string>>,
    private readonly parent: string,
  ) {}

  /** The host's cgroups, or an error saying what is missing (the jail then refuses to launch). */
  static detect(mount = '/sys/fs/cgroup', parent = 'capsule'): Cgroups {
    if (fs.existsSync(path.join(mount, 'cgroup.controllers'))) {
      const available = fs.readFileSync(path.join(mount, 'cgroup.controllers'), 'utf8').split(/\s+/);
      const missing = ['memory', 'cpu', 'pids'].filter((c) => !available.includes(c));
      if (missing.length > 0)
        throw new CapsuleError(
          ErrorCode.JAIL_FAILED,
          `cgroup v2 at ${mount} lacks the ${missing.join(', ')} controller(s)`,
        );
      return new Cgroups(2, { unified: mount }, parent);
    }
    const roots: Partial<Record<V1Controller, string>> = {};
    for (const c of [...V1_REQUIRED, ...V1_OPTIONAL]) {
      const dir = path.join(mount, c);
      if (fs.existsSync(path.join(dir, 'cgroup.procs'))) roots[c] = fs.realpathSync(dir);
    }
    const missing = V1_REQUIRED.filter((c) => !roots[c]);
    if (missing.length > 0)
      throw new CapsuleError(
        ErrorCode.JAIL_FAILED,
        `no cgroup v1 ${missing.join(', ')} hierarchy under ${mount} (and no cgroup v2 there)`,
      );
    return new Cgroups(1, roots, parent);
  }

  /** The cgroup of one VM (nothing is created until `create`). */
  vm(tenant: string, name: string): VmCgroup {
    const rel = path.join(this.parent, cgroupName(tenant), cgroupName(name));
    if (this.version === 2)
      return new VmCgroup(2, { unified: path.join(this.roots.unified!, rel) }, this.roots.unified!);
    // hierarchies mounted together (cpu,cpuacct) are one directory: keep each once
    const dirs: Partial<Record<V1Controller, string>> = {};
    for (const [c, root] of Object.entries(this.roots) as Array<[V1Controller, string]>) dirs[c] = path.join(root, rel);
    return new VmCgroup(1, dirs, null);
  }
}

export class VmCgroup {
  constructor(
    readonly version: 1 | 2,
    private readonly dirs: Partial<Record<V1Controller | 'unified', string>>,
    private readonly unifiedRoot: string | null,
  ) {}

  private uniqueDirs(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  /** The memory limit it enforces, in MiB (for an OOM kill's reason); null if unreadable. */
  memoryLimitMib(): number | null {
    try {
      const file =
        this.version === 2
          ? path.join(this.dirs.unified!, 'memory.max')
          : path.join(this.dirs.memory!, 'memory.limit_in_bytes');
      return Math.round(readNumber(file) / (1024 * 1024));
    } catch {
      return null;
    }
  }

  create(limits: VmLimits): void {
    const memoryBytes = String(limits.memoryMib * 1024 * 1024);
    try {
      if (this.version === 2) {
        const dir = this.dirs.unified!;
        this.enableControllers(dir);
        fs.mkdirSync(dir, { recursive: true });
        write(path.join(dir, 'memory.max'), memoryBytes);
        if (fs.existsSync(path.join(dir, 'memory.swap.max'))) write(path.join(dir, 'memory.swap.max'), '0');
        write(
          path.join(dir, 'cpu.max'),
          `${Math.round((limits.cpuMillicores * CPU_PERIOD_US) / 1000)} ${CPU_PERIOD_US}`,
        );
        write(path.join(dir, 'pids.max'), String(limits.pidsMax));
        this.setCpuPriority('starting');
        if (fs.existsSync(path.join(dir, 'io.weight'))) write(path.join(dir, 'io.weight'), `default ${IO_WEIGHT}`);
        return;
      }
      for (const dir of this.uniqueDirs()) fs.mkdirSync(dir, { recursive: true });
      const d = this.dirs;
      // no swapping around the limit (where swap accounting exists), and the kernel refuses a limit above the
      // swap limit (EINVAL): a cgroup its uid's last VM left (its removal timed out) may hold a lower one
      const memsw = path.join(d.memory!, 'memory.memsw.limit_in_bytes');
      const swapLimited = fs.existsSync(memsw);
      if (swapLimited && readNumber(memsw) < Number(memoryBytes)) write(memsw, memoryBytes);
      write(path.join(d.memory!, 'memory.limit_in_bytes'), memoryBytes);
      if (swapLimited) write(memsw, memoryBytes);
      write(path.join(d.cpu!, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      write(path.join(d.cpu!, 'cpu.cfs_quota_us'), String(Math.round((limits.cpuMillicores * CPU_PERIOD_US) / 1000)));
      write(path.join(d.pids!, 'pids.max'), String(limits.pidsMax));
      this.setCpuPriority('starting');
      for (const file of ['blkio.weight', 'blkio.bfq.weight']) {
        const f = d.blkio ? path.join(d.blkio, file) : null;
        if (f && fs.existsSync(f)) {
          write(f, String(IO_WEIGHT));
          break;
        }
      }
    } catch (err) {
      this.removeDirs();
      if (err instanceof CapsuleError) throw err;
      throw new CapsuleError(ErrorCode.JAIL_FAILED, `could not create the VM's cgroup: ${(err as Error).message}`, {
        step: 'jail: cgroup',
        cause: err,
      });
    }
  }

  /**
   * Made with `limits` (see create), then process `pid` (every thread) moved in from `from`, which is removed.
   * Memory it was charged before stays with `from`'s parent (kernels no longer move charges: 6.x refuses
   * v1's move_charge_at_immigrate); what it allocates from now on is charged here.
   */
  takeOver(pid: number, from: VmCgroup, limits: VmLimits): void {
    this.create(limits);
    try {
      for (const file of this.procsFiles()) write(file, String(pid));
    } catch (err) {
      throw new CapsuleError(
        ErrorCode.JAIL_FAILED,
        `could not move the VM into its cgroup: ${(err as Error).message}`,
        {
          step: 'jail: cgroup',
          cause: err,
        },
      );
    }
    from.removeDirs();
  }

  /** v2: a controller is usable in a child only if every ancestor enables it for its children. */
  private enableControllers(dir: string): void {
    const root = this.unifiedRoot!;
    const enable = (at: string): void => {
      const available = fs.readFileSync(path.join(at, 'cgroup.controllers'), 'utf8').split(/\s+/);
      write(
        path.join(at, 'cgroup.subtree_control'),
        ['memory', 'cpu', 'pids', 'io']
          .filter((c) => available.includes(c))
          .map((c) => `+${c}`)
          .join(' '),
      );
    };
    let at = root;
    enable(at);
    for (const part of path.relative(root, path.dirname(dir)).split('/').filter(Boolean)) {
      at = path.join(at, part);
      fs.mkdirSync(at, { recursive: true });
      enable(at);
    }
  }

  /** Its CPU weight (CPU_WEIGHT); a cgroup already gone is left alone. */
  setCpuPriority(priority: CpuPriority): void {
    const [file, value] =
      this.version === 2
        ? [path.join(this.dirs.unified!, 'cpu.weight'), CPU_WEIGHT.v2[priority]]
        : [path.join(this.dirs.cpu!, 'cpu.shares'), CPU_WEIGHT.v1[priority]];
    try {
      write(file, String(value));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** The files a process writes its pid into to join every controller. */
  procsFiles(): string[] {
    return this.uniqueDirs().map((dir) => path.join(dir, 'cgroup.procs'));
  }

  usage(): CgroupUsage | null {
    try {
      if (this.version === 2) {
        const dir = this.dirs.unified!;
        const current = readNumber(path.join(dir, 'memory.current'));
        const peakFile = path.join(dir, 'memory.peak');
        return {
          cpuSeconds: readKeyed(path.join(dir, 'cpu.stat'), 'usage_usec') / 1e6,
          memoryBytes: current,
          memoryPeakBytes: fs.existsSync(peakFile) ? readNumber(peakFile) : current,
        };
      }
      const d = this.dirs;
      return {
        cpuSeconds: d.cpuacct ? readNumber(path.join(d.cpuacct, 'cpuacct.usage')) / 1e9 : 0,
        memoryBytes: readNumber(path.join(d.memory!, 'memory.usage_in_bytes')),
        memoryPeakBytes: readNumber(path.join(d.memory!, 'memory.max_usage_in_bytes')),
      };
    } catch {
      return null; // not created, or gone
    }
  }

  /** Why its QEMU died, if the kernel's OOM killer killed it for the memory limit; else null. */
  oomReason(): string | null {
    return this.oomKills() > 0 ? `out of memory (cgroup limit ${this.memoryLimitMib()} MiB)` : null;
  }

  /** How many processes the kernel's OOM killer killed in this cgroup. */
  oomKills(): number {
    try {
      if (this.version === 2) return readKeyed(path.join(this.dirs.unified!, 'memory.events'), 'oom_kill');
      return readKeyed(path.join(this.dirs.memory!, 'memory.oom_control'), 'oom_kill');
    } catch {
      return 0;
    }
  }

  /** Kill whatever is left in it and remove it (the tenant level stays: another VM may be joining it). */
  async remove(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = this.procsFiles().flatMap((f) => {
        try {
          return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number);
        } catch {
          return [];
        }
      });
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      if (this.removeDirs()) return;
      await sleep(20); // a killed process leaves its cgroup a moment after the signal
    }
    throw new Error(`cgroup ${this.uniqueDirs()[0]} could not be removed: processes remain`);
  }

  /** rmdir the VM level in every hierarchy (an empty one); true when it is gone from all. */
  removeDirs(): boolean {
    let gone = true;
    for (const dir of this.uniqueDirs()) {
      try {
        fs.rmdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') gone = false;
      }
    }
    return gone;
  }
}

// The jail every QEMU runs in: its own uid from CAPSULE_UID_RANGE, a private mount namespace whose root
// holds only QEMU and the VM's own files, and a cgroup with memory, CPU and pids limits. There is no
// fallback: if the jail cannot be made (server not root, no cgroups, no QEMU), every launch fails with
// JAIL_FAILED and says why. CAPSULE_UNSAFE_NO_JAIL=1 runs QEMU unjailed as the server's user, for
// development only, and says so loudly.
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode, type VmShape } from '@capsule/protocol';
import type { Logger } from '../log.js';
import { Cgroups, type VmCgroup, type VmLimits } from './cgroups.js';
import { checkLauncher, JAIL_MOUNTPOINT, jailedCommand, type JailPlan } from './launcher.js';
import { prepareQemuRoot, type QemuRoot } from './qemu-root.js';
import { UidPool, type UidRange } from './uid-pool.js';

export interface JailSettings {
  unsafeNoJail: boolean;
  uidRange: UidRange;
  /** QEMU's own memory on top of guest RAM, in the cgroup limit; null: the measured default. */
  memoryOverheadMib: number | null;
  cacheDir: string;
  dataDir: string;
  qemuBinary: string;
  /** The jail's launcher binary (native/capsule-jail.c, built by `npm run build`). */
  jailLauncherPath: string;
  /** Where the host's cgroup filesystems are mounted (CAPSULE_CGROUP_MOUNT, default /sys/fs/cgroup). */
  cgroupMount: string;
}

/**
 * QEMU's memory beyond guest RAM, with margin: TCG's translation cache (tb-size=64) and QEMU itself
 * (peak ~110 MiB measured here for a 512 MiB guest under TCG); KVM has no translation cache.
 */
const OVERHEAD_MIB = { tcg: 192, kvm: 96 } as const;
/** The cgroup tenant level of VMs that are no tenant's: image builders, app and runtime snapshots, the KVM probe. */
export const SYSTEM_TENANT = '_capsule';
/** The cgroup level of warm pool clones until a launch claims one (lifecycle/warm-pool.ts). */
export const POOL_TENANT = '_pool';

/**
 * CPU beyond one core per vCPU: QEMU's main loop and I/O threads. Under TCG the main loop emulates every
 * device access: a cold boot here took 10.9 s with 0.2 core of margin, 8.8 s with 0.5 (unjailed: 9.1 s).
 */
const CPU_MARGIN_MILLICORES = { tcg: 500, kvm: 200 } as const;
/** QEMU's threads: main loop, RCU, one per vCPU, its I/O worker pool (up to 64). */
const PIDS_BASE = 128;

export class Jailer {
  private constructor(
    readonly unsafe: boolean,
    private readonly settings: JailSettings,
    private readonly root: QemuRoot | null,
    private readonly cgroups: Cgroups | null,
    readonly uids: UidPool | null,
    /** Why no jail can be made (every launch fails with it), or null. */
    readonly unavailable: CapsuleError | null,
  ) {}

  /** No jail on this server (it runs no VM: CAPSULE_ROLE=api): making one fails with `reason`. */
  static none(settings: JailSettings, reason: CapsuleError): Jailer {
    return new Jailer(false, settings, null, null, null, reason);
  }

  static create(settings: JailSettings, log: Logger): Jailer {
    if (settings.unsafeNoJail) {
      log.warn(
        '!!! CAPSULE_UNSAFE_NO_JAIL=1: QEMU runs WITHOUT a jail, as the server user, with no cgroup limits. A ' +
          'guest that escapes QEMU owns this host and every tenant. Development only. !!!',
      );
      return new Jailer(true, settings, null, null, null, null);
    }
    try {
      if (process.getuid?.() !== 0)
        throw new Error(
          'the server is not running as root, which making a jail needs (or set CAPSULE_UNSAFE_NO_JAIL=1 for ' +
            'development)',
        );
      checkLauncher(settings.jailLauncherPath);
      fs.mkdirSync(JAIL_MOUNTPOINT, { recursive: true, mode: 0o755 });
      const root = prepareQemuRoot(settings.qemuBinary, path.join(settings.cacheDir, 'jail'));
      const cgroups = Cgroups.detect(settings.cgroupMount);
      const uids = new UidPool(settings.uidRange, settings.dataDir);
      log.info('jail: every QEMU runs as its own uid, chrooted in a private mount namespace, in its own cgroup', {
        uidRange: `${settings.uidRange.first}-${settings.uidRange.last}`,
        cgroup: `v${cgroups.version}`,
        qemuRoot: root.dir,
      });
      return new Jailer(false, settings, root, cgroups, uids, null);
    } catch (err) {
      // QEMU missing keeps its own code (VMM_UNAVAILABLE: install it); anything else is the jail's
      const cause = err instanceof CapsuleError && err.code !== ErrorCode.JAIL_FAILED ? err : null;
      const unavailable =
        cause ??
        new CapsuleError(ErrorCode.JAIL_FAILED, `cannot jail QEMU: ${(err as Error).message}`, {
          step: 'jail',
          cause: err,
        });
      log.error('jail unavailable: every launch will fail until this is fixed', { reason: unavailable.message });
      return new Jailer(false, settings, null, null, null, unavailable);
    }
  }

  /**
   * The jail of one VM, or null when unjailed (unsafe mode). `uid`: the VM's recorded uid; omitted, an
   * ephemeral one is claimed (a builder or snapshot VM) and released with `release()`.
   */
  forVm(tenant: string, owner: string, uid?: number): VmJail | null {
    if (this.unsafe) return null;
    if (this.unavailable || !this.root || !this.cgroups || !this.uids)
      throw this.unavailable ?? new Error('jail not set up');
    const claimed = uid ?? this.uids.claim(owner);
    return new VmJail(
      claimed,
      uid === undefined ? () => this.uids!.release(claimed, owner) : () => undefined,
      this.cgroupOf({ tenantId: tenant, jailUid: claimed })!,
      this.root,
      this.settings,
    );
  }

  /** The cgroup of a MicroVM with a recorded uid (a re-adopted QEMU's, a dead one's leftovers); null without. */
  cgroupOf(record: { tenantId: string; jailUid: number | null }): VmCgroup | null {
    return record.jailUid === null || !this.cgroups ? null : this.cgroups.vm(record.tenantId, `u${record.jailUid}`);
  }

  /**
   * Run `task` with a jail of its own for a VM that lives only as long as the task (a builder, a
   * snapshot VM, the KVM probe): its uid is claimed first and released when the task ends, however.
   */
  async withJail<T>(tenant: string, owner: string, task: (jail: VmJail | null) => Promise<T>): Promise<T> {
    const jail = this.forVm(tenant, owner);
    try {
      return await task(jail);
    } finally {
      jail?.release();
    }
  }

  /** The uid a new MicroVM keeps for life (recorded with it; released when its files are gone). */
  claimUid(owner: string): number | null {
    if (this.unsafe) return null;
    if (!this.uids) throw this.unavailable ?? new Error('jail not set up');
    return this.uids.claim(owner);
  }

  releaseUid(uid: number | null, owner: string): void {
    if (uid !== null) this.uids?.release(uid, owner);
  }
}

export class VmJail {
  constructor(
    readonly uid: number,
    /** Frees an ephemeral uid (a no-op for a MicroVM's own). */
    readonly release: () => void,
    readonly cgroup: VmCgroup,
    private readonly root: QemuRoot,
    private readonly settings: JailSettings,
  ) {}

  get gid(): number {
    return this.uid;
  }

  limits(shape: VmShape & { accelerator: 'kvm' | 'tcg' }): VmLimits {
    return {
      memoryMib: shape.memoryMib + (this.settings.memoryOverheadMib ?? OVERHEAD_MIB[shape.accelerator]),
      cpuMillicores: shape.vcpuCount * 1000 + CPU_MARGIN_MILLICORES[shape.accelerator],
      pidsMax: PIDS_BASE + 2 * shape.vcpuCount,
    };
  }

  command(plan: Omit<JailPlan, 'uid' | 'gid' | 'cgroupProcs'>, qemuArgs: string[]): [string, string[]] {
    return jailedCommand(
      this.settings.jailLauncherPath,
      this.root,
      { ...plan, uid: this.uid, gid: this.gid, cgroupProcs: this.cgroup.procsFiles() },
      qemuArgs,
    );
  }
}

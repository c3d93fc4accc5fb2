// What a machine is launched with: the guest's shape and files, where its disk overlay goes, what it is
// restored from, and its jail.
import type { CapsuleConfig } from '../config.js';
import type { Runtime } from '../runtimes/registry.js';
import type { VmJail } from '../jail/jailer.js';
import type { MachineSpec } from './qemu-args.js';
import type { PageRanges } from './page-prefetch.js';

/** A ready snapshot's frozen files: guest RAM, device state, and the disk layer under every clone. */
export interface SnapshotFiles {
  memoryPath: string;
  statePath: string;
  diskPath: string;
}

/** What a VM is restored from instead of booting. */
export type RestoreSource =
  /**
   * A ready snapshot: RAM mapped copy-on-write from its memory file, a new overlay chained on its disk; `prefetch`,
   * the ranges of the memory file to read ahead while it restores (page-prefetch.ts).
   */
  | ({ kind: 'snapshot'; prefetch?: PageRanges } & SnapshotFiles)
  /** A suspended VM: RAM in the state stream, the VM's own overlay adopted as is. */
  | { kind: 'suspended'; statePath: string; diskPath: string };

export interface LaunchOptions extends Omit<MachineSpec, 'overlayPath' | 'incoming'> {
  /** The VM's jail (its uid, cgroup, chroot); null only when running unjailed (CAPSULE_UNSAFE_NO_JAIL). */
  jail: VmJail | null;
  /** Restore instead of booting. */
  restore?: RestoreSource;
  /** Where the disk overlay goes (default: in vmDir, removed with it). A snapshot build keeps it. */
  overlayPath?: string;
  rootfsPath: string;
  /** A qcow2 layer over the rootfs (an image version): the overlay chains on it instead. */
  baseDisk?: string;
  qemuBinary: string;
  qemuImgBinary: string;
  bootTimeoutMs: number;
}

/** The launch options that come from configuration and the runtime rather than from the request. */
export function hostLaunchOptions(
  config: Pick<CapsuleConfig, 'qemuBinary' | 'qemuImgBinary' | 'bootTimeoutMs' | 'extraKernelArgs'>,
  runtime: Pick<Runtime, 'kernelPath' | 'initrdPath' | 'rootfsPath'>,
): Pick<
  LaunchOptions,
  'kernelPath' | 'initrdPath' | 'rootfsPath' | 'qemuBinary' | 'qemuImgBinary' | 'bootTimeoutMs' | 'extraKernelArgs'
> {
  return {
    kernelPath: runtime.kernelPath,
    initrdPath: runtime.initrdPath,
    rootfsPath: runtime.rootfsPath,
    qemuBinary: config.qemuBinary,
    qemuImgBinary: config.qemuImgBinary,
    bootTimeoutMs: config.bootTimeoutMs,
    extraKernelArgs: config.extraKernelArgs,
  };
}

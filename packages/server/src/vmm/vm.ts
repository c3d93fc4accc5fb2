// The seam between the lifecycle and the VMM: what starting and taking back a VM gives the lifecycle
// (a `Vm`), and who starts them (a `Hypervisor`). The server passes `qemuHypervisor` (hypervisor.ts,
// real QEMU); the lifecycle's unit tests pass a fake (tests/support/fake-hypervisor.ts), so quotas,
// failures and races are tested in milliseconds without booting anything.
import type { SuspendStep } from '@capsule/protocol';
import type { VmCgroup } from '../jail/cgroups.js';
import type { VmJail } from '../jail/jailer.js';
import type { AgentClient } from './agent-client.js';
import type { LaunchOptions } from './launch-options.js';
import type { RamDeltaStats } from './ram-delta.js';

/** What a suspend leaves in its target directory: the state published last, the disk beside it. */
export interface SuspendedFiles {
  statePath: string;
  diskPath: string;
  /** RAM pages written vs left to the base snapshot; null when all of RAM was written. */
  ram: RamDeltaStats | null;
  /** How long each step took (pause, save, publish), for the log. */
  stepsMs: Record<string, number>;
  /**
   * Settles once the VM's process is gone and everything it held is released. The state is durable
   * before: the caller answers without waiting, and waits before the VM's files are used again.
   */
  stopped: Promise<void>;
}

export interface SuspendOptions {
  /** Awaited as each step is reached (fault injection for tests; nothing in production). */
  atStep?(step: SuspendStep): Promise<void>;
}

/** One running VM, as the lifecycle uses it. */
export interface Vm {
  readonly pid: number;
  readonly vmDir: string;
  /** Its writable disk layer. */
  readonly overlayPath: string;
  readonly agent: AgentClient;
  /** Its cgroup (usage); null when unjailed. */
  readonly cgroup: VmCgroup | null;
  /** How long each step of its start took, for the log (none for an adopted VM). */
  readonly startStepsMs: Record<string, number>;
  /** Its process is alive. */
  readonly isRunning: boolean;
  /** Called once if the VM ends without stop() (crash, kill, guest panic), with why. */
  onUnexpectedExit(listener: (reason: string) => void): void;
  /** Called when a write to its disk found the host filesystem full and the guest was paused. */
  onDiskFull(listener: () => void): void;
  isPausedByDiskFull(): Promise<boolean>;
  /** Retry the failed writes and run on, if still paused by them. */
  continueAfterDiskFull(): Promise<boolean>;
  /**
   * Save to `targetDir` durably and stop (`stopped`); if saving fails the VM keeps running (unless
   * `isRunning` says otherwise).
   */
  suspend(targetDir: string, opts?: SuspendOptions): Promise<SuspendedFiles>;
  /** Pause the guest until claim() (a warm pool's clone): zero CPU while it waits. */
  hold(): Promise<void>;
  /**
   * Run a held VM for its owner: its process moved into `jail`'s cgroup (null:
   * unjailed), the guest continued, then fresh entropy and the clock given again; resolves once the
   * guest has them.
   */
  claim(jail: VmJail | null): Promise<void>;
  /** Stop it and release everything it holds. Idempotent. */
  stop(): Promise<void>;
  /** Let go without stopping it (server shutdown): the next server adopts it. */
  detach(): void;
}

export interface Hypervisor {
  /**
   * Boot, or restore (`opts.restore`), a VM; rejects with a CapsuleError (its `step` says where) and leaves nothing.
   */
  launch(opts: LaunchOptions): Promise<Vm>;
  /** Take back a VM a previous server started; rejects if `pid` is not that VM or it does not answer. */
  adopt(vmDir: string, pid: number, overlayPath: string, cgroup: VmCgroup | null): Promise<Vm>;
}

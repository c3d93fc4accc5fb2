// A hypervisor without VMs, for the lifecycle's unit tests: each "VM" is a directory with an overlay
// file, a fake guest agent on a real socket (fake-guest.ts) and a little "memory" a test can write.
// Suspend writes that memory into the state file and moves the overlay beside it, as QEMU's suspend
// does; a resume restores it, or fails at RESTORE_LOAD when the state is not one. Tests steer it: hold
// or fail a launch (`beforeReady`), make a suspend fail (`suspendFault`), crash a VM. Its "processes"
// outlive a server that detaches them, so a second service can adopt them (recovery).
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import {
  AgentClient,
  RESTORE_LOAD,
  type LaunchOptions,
  vmPaths,
  type Hypervisor,
  type SuspendedFiles,
  type Vm,
  type VmCgroup,
} from '@capsule/server/internals';
import { type FakeGuest, startFakeGuest } from './fake-guest.js';

/** Above any pid_max (2^22): no real process has one of these, so no kill can reach a real one. */
const FIRST_FAKE_PID = 10_000_000;
const STATE_MAGIC = 'capsule-fake-vm-state';

export class FakeVm implements Vm {
  /** What the "guest" holds in RAM: kept across suspend and resume, lost on a crash or stop. */
  memory: Record<string, string> = {};
  readonly startStepsMs: Record<string, number> = {};
  alive = true;
  private stopping = false;
  private paused = false;
  private exitListeners: Array<(reason: string) => void> = [];
  private diskFullListeners: Array<() => void> = [];

  constructor(
    private readonly hypervisor: FakeHypervisor,
    readonly pid: number,
    readonly vmDir: string,
    readonly overlayPath: string,
    readonly agent: AgentClient,
    /** Its guest agent: one per VM, kept when a new server adopts the VM. */
    readonly guest: FakeGuest,
    /** The launch's options (its hostname is the MicroVM id). */
    readonly options: LaunchOptions,
  ) {}

  readonly cgroup: VmCgroup | null = null;

  get isRunning(): boolean {
    return this.alive;
  }

  onUnexpectedExit(listener: (reason: string) => void): void {
    if (!this.alive && !this.stopping) listener('fake VM exited');
    else this.exitListeners.push(listener);
  }

  onDiskFull(listener: () => void): void {
    this.diskFullListeners.push(listener);
  }

  async isPausedByDiskFull(): Promise<boolean> {
    return this.paused;
  }

  async continueAfterDiskFull(): Promise<boolean> {
    const was = this.paused;
    this.paused = false;
    return was;
  }

  /** The host disk filled under its overlay: the guest pauses, as QEMU's werror=enospc does. */
  fillDisk(): void {
    this.paused = true;
    for (const l of this.diskFullListeners) l();
  }

  /** Its "QEMU" dies underneath the server (kill -9, guest panic). */
  crash(reason = 'QEMU process killed by SIGKILL'): void {
    const watched = !this.stopping; // a detached VM's server is gone: no one hears it die
    this.end();
    if (watched) for (const l of this.exitListeners) l(reason);
    this.exitListeners = [];
  }

  async suspend(targetDir: string): Promise<SuspendedFiles> {
    const fault = this.hypervisor.suspendFault;
    if (fault === 'keeps-running') throw new Error('fake: no space left on device while saving');
    if (fault === 'dies') {
      this.end();
      throw new Error('fake: QMP socket closed before migrate-set-capabilities');
    }
    this.stopping = true;
    fs.mkdirSync(targetDir, { recursive: true, mode: 0o700 });
    const statePath = path.join(targetDir, 'state');
    const diskPath = path.join(targetDir, 'disk.qcow2');
    if (this.overlayPath !== diskPath) fs.renameSync(this.overlayPath, diskPath);
    fs.writeFileSync(`${statePath}.partial`, JSON.stringify({ magic: STATE_MAGIC, memory: this.memory }));
    fs.renameSync(`${statePath}.partial`, statePath);
    const stopped = this.hypervisor.afterSuspend.then(() => this.end());
    return { statePath, diskPath, ram: null, stepsMs: {}, stopped };
  }

  /** Held for a warm pool, and claimed from it (a fake has no cgroup to move). */
  held = false;
  claimed = false;

  async hold(): Promise<void> {
    this.held = true;
  }

  async claim(): Promise<void> {
    if (!this.alive) throw new Error('fake: the clone is gone');
    this.claimed = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.end();
  }

  detach(): void {
    this.stopping = true;
    this.agent.close();
  }

  private end(): void {
    if (!this.alive) return;
    this.alive = false;
    this.agent.close();
    this.guest.close();
    this.hypervisor.forget(this);
    fs.rmSync(this.vmDir, { recursive: true, force: true });
  }
}

export class FakeHypervisor implements Hypervisor {
  /** Every launch's options, in order. */
  readonly launches: LaunchOptions[] = [];
  /**
   * Awaited after a launch's VM exists, before it is handed over: hold it (a gate) or throw (it fails, leaving
   * nothing).
   */
  beforeReady: ((opts: LaunchOptions) => Promise<void>) | null = null;
  /** The next suspends fail: with the VM still running, or with the VM gone. */
  suspendFault: 'keeps-running' | 'dies' | null = null;
  /** What a suspended VM's "process" still has to do after the suspend answered: its `stopped` waits for it. */
  afterSuspend: Promise<void> = Promise.resolve();
  private nextPid = FIRST_FAKE_PID;
  private readonly processes = new Map<number, FakeVm>();

  /** Live VMs ("processes"), whoever holds them. */
  get running(): FakeVm[] {
    return [...this.processes.values()];
  }

  /** The live VM of MicroVM `id`. */
  vmOf(id: string): FakeVm {
    const vm = this.running.find((v) => v.options.hostname === id);
    if (!vm) throw new Error(`no running fake VM for ${id}`);
    return vm;
  }

  async launch(opts: LaunchOptions): Promise<Vm> {
    this.launches.push(opts);
    let memory: Record<string, string> = {};
    const restore = opts.restore;
    if (restore?.kind === 'suspended') {
      const state = readState(restore.statePath);
      if (!state || !fs.existsSync(restore.diskPath))
        throw new CapsuleError(ErrorCode.BOOT_FAILED, 'restoring the suspended state failed: Not a migration stream', {
          step: RESTORE_LOAD,
        });
      memory = state.memory;
    }
    fs.mkdirSync(opts.vmDir, { recursive: true, mode: 0o700 });
    const overlayPath = restore?.kind === 'suspended' ? restore.diskPath : vmPaths(opts.vmDir).overlay;
    if (!fs.existsSync(overlayPath)) fs.writeFileSync(overlayPath, 'fake overlay\n');
    const guest = await startFakeGuest(path.join(opts.vmDir, 'agent.sock'), opts.hostname);
    let agent: AgentClient | null = null;
    try {
      agent = await AgentClient.connect(path.join(opts.vmDir, 'agent.sock'));
      await agent.waitReady(5000);
      const vm = new FakeVm(this, this.nextPid++, opts.vmDir, overlayPath, agent, guest, opts);
      vm.memory = memory;
      this.processes.set(vm.pid, vm);
      try {
        await this.beforeReady?.(opts);
      } catch (err) {
        await vm.stop();
        throw err;
      }
      return vm;
    } catch (err) {
      agent?.close();
      guest.close();
      if (restore?.kind !== 'suspended') fs.rmSync(opts.vmDir, { recursive: true, force: true });
      throw err;
    }
  }

  async adopt(vmDir: string, pid: number, overlayPath: string): Promise<Vm> {
    const vm = this.processes.get(pid);
    if (!vm || vm.vmDir !== vmDir || vm.overlayPath !== overlayPath) throw new Error(`process ${pid} is not this VM's`);
    // the previous server's handle let go of its link; a new one talks to the same guest
    const agent = await AgentClient.connect(path.join(vmDir, 'agent.sock'));
    await agent.waitReady(5000);
    const adopted = new FakeVm(this, pid, vmDir, overlayPath, agent, vm.guest, vm.options);
    adopted.memory = vm.memory;
    this.processes.set(pid, adopted);
    return adopted;
  }

  /** Called by a VM that ended. */
  forget(vm: FakeVm): void {
    if (this.processes.get(vm.pid) === vm) this.processes.delete(vm.pid);
  }
}

function readState(statePath: string): { memory: Record<string, string> } | null {
  try {
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as { magic?: string; memory?: Record<string, string> };
    return state.magic === STATE_MAGIC && state.memory ? { memory: state.memory } : null;
  } catch {
    return null;
  }
}

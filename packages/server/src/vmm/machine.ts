// One QEMU microVM process: start (dir → overlay → QEMU → QMP → agent ready), and stop.
// Every step registers its undo on a LIFO cleanup stack, so any failure leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapsuleError, ErrorCode, type LaunchStep } from '@capsule/protocol';
import { AgentClient } from './agent-client.js';
import { Cleanup } from './cleanup.js';
import { StepTimer } from './step-timer.js';
import { savePausedState } from './paused-state.js';
import { QmpClient } from './qmp.js';
import { fsyncPath } from '../durable.js';
import { loadDeviceState, saveDeviceState } from './migration.js';
import { savedIgnoringShared } from './migration-stream.js';
import { LEGACY_NETDEV, qemuArgs, vmPaths } from './qemu-args.js';
import { moveBase } from './base-layers.js';
import { BACKING_RECORD, prepareDisk } from './launch-disk.js';
import type { RamDeltaStats } from './ram-delta.js';
import { qemuCommand } from './qemu-command.js';
import { qemuMissing } from '../executables.js';
import { jailedQemu, sealRunDir } from './jailed-qemu.js';
import type { VmCgroup } from '../jail/cgroups.js';
import type { VmJail } from '../jail/jailer.js';
import { readTail } from '../jail/vm-files.js';
import { SerialLog, serialLogTail } from './serial-log.js';
import type { LaunchOptions } from './launch-options.js';
import type { SuspendedFiles, SuspendOptions, Vm } from './vm.js';
import { prefetch } from './page-prefetch.js';

export { hostLaunchOptions, type LaunchOptions, type RestoreSource, type SnapshotFiles } from './launch-options.js';

const SERIAL_TAIL_BYTES = 3000;
const RESTORE_TIMEOUT_MS = 30_000;
const QUIT_GRACE_MS = 2000;
/** Beside a suspended state that needs the legacy user-mode netdev. */
export const LEGACY_MARK = 'legacy-user-net';

/** The failing step of a restore whose snapshot files could not be loaded. */
export const RESTORE_LOAD: LaunchStep = 'restore: load device state';

const ADOPTED_EXIT_POLL_MS = 500;

/** Guard against pid reuse and zombies: only a live QEMU whose command line names this VM's directory. */
export function isQemuProcessOf(pid: number, vmDir: string): boolean {
  try {
    const state = /\) (\S)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    return state !== 'Z' && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${vmDir}/`);
  } catch {
    return false;
  }
}

/** The end of the guest's console log (the server keeps it: serial-log.ts). */
export function serialTail(vmDir: string, bytes = SERIAL_TAIL_BYTES): string {
  return serialLogTail(vmPaths(vmDir).serialLog, bytes).trim();
}

function fileTail(file: string, bytes: number): string {
  return readTail(file, bytes).trim();
}

export class Machine implements Vm {
  private exitListeners: Array<(reason: string) => void> = [];
  private hasExited = false;
  private exitReason = '';
  private stopping = false;
  /** The guest broke the agent protocol (its QEMU was killed for it). */
  private violation: string | null = null;
  /** Its console, read into the bounded log beside it. */
  private serial: SerialLog | null = null;
  /** Started with the legacy user-mode netdev (its state predates namespaces): its suspends say so. */
  legacyUserNet = false;
  /** The frozen layer under its overlay (unknown for a re-adopted QEMU): a suspend records it. */
  backing: string | null = null;
  /** How long each step of its start took (none for a re-adopted QEMU). */
  startStepsMs: Record<string, number> = {};
  /** What it was launched as (its hostname, shape): a claim fixes it up again (none for a re-adopted QEMU). */
  private launched: Pick<LaunchOptions, 'hostname' | 'vcpuCount' | 'memoryMib' | 'accelerator'> | null = null;

  private constructor(
    readonly vmDir: string,
    /** The VM's writable disk layer (in vmDir, or adopted from where a suspend left it). */
    readonly overlayPath: string,
    readonly pid: number,
    private readonly exited: Promise<unknown>,
    readonly qmp: QmpClient,
    readonly agent: AgentClient,
    private readonly cleanup: Cleanup,
    /** Its cgroup (usage, OOM kills); null when unjailed. */
    private ownCgroup: VmCgroup | null,
  ) {
    // a guest that floods past its credit or corrupts the link is cut off, and its VM with it
    agent.onViolation((reason) => {
      this.violation = reason;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    });
  }

  get cgroup(): VmCgroup | null {
    return this.ownCgroup;
  }

  /** Its QEMU is alive (a killed one counts as gone before Node has seen it exit). */
  get isRunning(): boolean {
    return !this.hasExited && isQemuProcessOf(this.pid, this.vmDir);
  }

  /** Called once if the QEMU process ends without stop() (crash, kill -9, guest panic). */
  onUnexpectedExit(listener: (reason: string) => void): void {
    if (this.hasExited && !this.stopping) listener(this.exitReason);
    else this.exitListeners.push(listener);
  }

  /**
   * QEMU paused the guest because a write to its disk found the host filesystem full (the drive's
   * default werror=enospc): the write is kept and retried by continueAfterDiskFull(), nothing is lost.
   */
  onDiskFull(listener: () => void): void {
    this.qmp.onEvent((e) => {
      if (e.event === 'BLOCK_IO_ERROR' && e.data?.nospace === true && e.data?.action === 'stop') listener();
    });
  }

  /** Paused by a full host disk right now (QEMU's run state io-error)? */
  async isPausedByDiskFull(): Promise<boolean> {
    return (await this.qmp.execute('query-status')).status === 'io-error';
  }

  /** Retry the writes that failed and run on, if it is still paused by them (never a VM stopped for a suspend). */
  async continueAfterDiskFull(): Promise<boolean> {
    if (!(await this.isPausedByDiskFull())) return false;
    await this.qmp.execute('cont');
    return true;
  }

  static async launch(opts: LaunchOptions): Promise<Machine> {
    const legacyMarked =
      opts.restore?.kind === 'suspended' && fs.existsSync(path.join(path.dirname(opts.restore.statePath), LEGACY_MARK));
    try {
      return await Machine.launchOnce({ ...opts, legacyUserNet: opts.legacyUserNet || legacyMarked });
    } catch (err) {
      // a state saved on user-mode networking (before namespaces) needs that backend's section: once
      // more with an isolated, unattached one (its suspends then say so, and resume with it at once)
      const legacy =
        opts.restore &&
        opts.netns &&
        !opts.legacyUserNet &&
        !legacyMarked &&
        /savevm section or instance 'slirp'/.test((err as Error).message);
      if (!legacy) throw err;
      return Machine.launchOnce({ ...opts, legacyUserNet: true });
    }
  }

  private static async launchOnce(opts: LaunchOptions): Promise<Machine> {
    const cleanup = new Cleanup();
    const paths = vmPaths(opts.vmDir);
    const jail = opts.jail;
    const steps = new StepTimer();
    try {
      // the server's directory (root, 0700); QEMU gets run/ and its overlay file, nothing else of it
      fs.mkdirSync(opts.vmDir, { recursive: true, mode: 0o700 });
      cleanup.push('vm directory', () => fs.rmSync(opts.vmDir, { recursive: true, force: true }));
      fs.mkdirSync(paths.run, { mode: 0o700 }); // QEMU's own while it starts (jailed-qemu.ts)

      const restore = opts.restore;
      // read ahead what the guest will touch first, while QEMU starts and loads its device state
      if (restore?.kind === 'snapshot' && restore.prefetch) void prefetch(restore.memoryPath, restore.prefetch);
      const { overlayPath, memory, backing } = await prepareDisk(opts);
      steps.done('disk');
      const argv = qemuArgs({ ...opts, memory, overlayPath, incoming: opts.restore !== undefined });
      const [command, args] = jail
        ? jailedQemu(jail, { ...opts, overlayPath, backing, memory }, argv, cleanup)
        : qemuCommand(opts, argv);

      steps.done('jail');
      const log = fs.openSync(paths.qemuLog, 'w');
      let child: ChildProcess;
      try {
        child = spawn(command, args, {
          stdio: ['ignore', log, log],
          detached: true, // its own process group: a signal to the server's group does not hit guests
        });
      } finally {
        fs.closeSync(log);
      }
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      const spawnError = await new Promise<Error | null>((resolve) => {
        child.once('spawn', () => resolve(null));
        child.once('error', resolve);
      });
      if (spawnError) {
        const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
        throw missing
          ? qemuMissing(opts.qemuBinary, spawnError)
          : new CapsuleError(ErrorCode.BOOT_FAILED, `could not start QEMU: ${spawnError.message}`, {
              step: 'spawn',
              cause: spawnError,
            });
      }
      let alive = true;
      void exited.then(() => (alive = false));
      cleanup.push('qemu process', async () => {
        if (alive) {
          try {
            process.kill(child.pid!, 'SIGKILL');
          } catch {
            // raced with its exit
          }
        }
        await exited;
      });

      const died = (step: LaunchStep): Promise<never> =>
        exited.then(({ code, signal }) => {
          const why = jail?.cgroup.oomReason() ?? (signal ? `signal ${signal}` : `exit code ${code}`);
          const qemuLog = fileTail(paths.qemuLog, 1500);
          const serial = serialTail(opts.vmDir);
          throw new CapsuleError(
            ErrorCode.BOOT_FAILED,
            `QEMU exited during ${step} (${why})` +
              (qemuLog ? `\n--- qemu ---\n${qemuLog}` : '') +
              (serial ? `\n--- serial console (tail) ---\n${serial}` : ''),
            { step },
          );
        });

      const qmp = await Promise.race([QmpClient.connect(paths.qmp, 10_000, () => alive), died('QMP connect')]);
      cleanup.push('qmp', () => qmp.close());
      const serial = await Promise.race([
        SerialLog.connect(paths.serialSocket, paths.serialLog),
        died('console connect'),
      ]);
      cleanup.push('serial console', () => serial.close());
      const agent = await Promise.race([AgentClient.connect(paths.agent), died('agent connect')]);
      cleanup.push('agent link', () => agent.close());
      steps.done('spawn');
      // a cold-booted QEMU has made all its sockets; a restoring one makes its incoming socket first
      if (jail && !restore) sealRunDir(opts.vmDir);

      if (restore) {
        // RESTORE_LOAD failures are the snapshot's (a bad or missing file); later ones are the guest's or the host's
        let step: LaunchStep = RESTORE_LOAD;
        const restored = async (): Promise<void> => {
          // a ready snapshot's RAM is in its memory file; a suspended VM's is in the stream
          await loadDeviceState(qmp, paths.incoming, restore.statePath, {
            // as it was saved: a ready snapshot always is; a suspended state says so in its head
            ignoreShared: restore.kind === 'snapshot' || savedIgnoringShared(restore.statePath),
            timeoutMs: RESTORE_TIMEOUT_MS,
          });
          if (jail) sealRunDir(opts.vmDir); // before the guest runs again
          steps.done('load');
          step = 'restore: agent';
          await qmp.execute('cont');
          // the fix-up is the first request: its answer also proves the agent is back (no separate ping). A resumed
          // VM keeps its identity (hostname, MAC); a clone of a snapshot is given its own.
          if (restore.kind === 'suspended') await agent.resumeFixups(RESTORE_TIMEOUT_MS);
          else await agent.restoreIdentity(opts.hostname, RESTORE_TIMEOUT_MS);
          steps.done('fix-up');
        };
        await Promise.race([
          restored().catch((err: Error) => {
            // QEMU's own complaint (a device state it rejects, say) is the useful part: give it with the error
            const qemuSaid = fileTail(paths.qemuLog, 600);
            throw new CapsuleError(
              ErrorCode.BOOT_FAILED,
              `restoring ${restore.kind === 'snapshot' ? 'the ready snapshot' : 'the suspended state'} ` +
                `failed: ${err.message}${qemuSaid ? ` (qemu: ${qemuSaid})` : ''}`,
              { step, cause: err },
            );
          }),
          exited.then(() => died(step)),
        ]);
        return Machine.started(opts, overlayPath, backing, child, exited, qmp, agent, serial, cleanup, steps);
      }

      const ready = await Promise.race([
        agent.waitReady(opts.bootTimeoutMs).then(
          () => null,
          (err: Error) => err,
        ),
        died('boot'),
      ]);
      if (ready) {
        // The agent link gave up. If QEMU is on its way out (guest panic closes the socket first), say so.
        const exitingSoon = await Promise.race([exited.then(() => true), sleep(1000).then(() => false)]);
        if (exitingSoon) await died('boot');
        throw new CapsuleError(
          ErrorCode.BOOT_TIMEOUT,
          `guest agent not ready after ${opts.bootTimeoutMs} ms\n--- serial console (tail) ` +
            `---\n${serialTail(opts.vmDir)}`,
          { step: 'agent ready', cause: ready },
        );
      }
      // rtc is off on microvm: the guest starts at 1970 until told otherwise.
      await Promise.race([agent.setClock(), died('clock sync')]);
      steps.done('boot');

      return Machine.started(opts, overlayPath, backing, child, exited, qmp, agent, serial, cleanup, steps);
    } catch (err) {
      await cleanup.run().catch(() => undefined);
      throw err;
    }
  }

  private static started(
    opts: LaunchOptions,
    overlayPath: string,
    backing: string,
    child: ChildProcess,
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    qmp: QmpClient,
    agent: AgentClient,
    serial: SerialLog,
    cleanup: Cleanup,
    steps: StepTimer,
  ): Machine {
    const machine = new Machine(
      opts.vmDir,
      overlayPath,
      child.pid!,
      exited,
      qmp,
      agent,
      cleanup,
      opts.jail?.cgroup ?? null,
    );
    machine.serial = serial;
    machine.legacyUserNet = opts.legacyUserNet ?? false;
    machine.backing = backing;
    machine.startStepsMs = steps.ms;
    machine.launched = opts;
    void exited.then(({ code, signal }) =>
      machine.onExit(signal ? `QEMU process killed by ${signal}` : `QEMU process exited with code ${code}`),
    );
    return machine;
  }

  /**
   * Re-adopt a QEMU process a previous server started (it runs in its own process group and outlives
   * the server). We are not its parent, so its exit is noticed by polling. Throws if it is not ours,
   * not alive, or its agent does not answer; the caller then stops it.
   */
  static async adopt(vmDir: string, pid: number, overlayPath: string, cgroup: VmCgroup | null): Promise<Machine> {
    if (!isQemuProcessOf(pid, vmDir)) throw new Error(`process ${pid} is not this VM's QEMU`);
    const paths = vmPaths(vmDir);
    const cleanup = new Cleanup();
    const exited = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!isQemuProcessOf(pid, vmDir)) {
          clearInterval(timer);
          resolve();
        }
      }, ADOPTED_EXIT_POLL_MS);
      timer.unref();
    });
    cleanup.push('vm directory', () => fs.rmSync(vmDir, { recursive: true, force: true }));
    if (cgroup) cleanup.push('cgroup', () => cgroup.remove());
    cleanup.push('qemu process', async () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    });
    try {
      const qmp = await QmpClient.connect(paths.qmp, 5000, () => isQemuProcessOf(pid, vmDir));
      cleanup.push('qmp', () => qmp.close());
      const agent = await AgentClient.connect(paths.agent);
      cleanup.push('agent link', () => agent.close());
      const status = await qmp.execute('query-status');
      if (!status.running) await qmp.execute('cont'); // a suspend cut short before its state was published
      await agent.waitReady(15_000);
      const machine = new Machine(vmDir, overlayPath, pid, exited, qmp, agent, cleanup, cgroup);
      // its console again, where the last server left off (a QEMU from before server-kept consoles has none)
      machine.serial = await SerialLog.connect(paths.serialSocket, paths.serialLog).catch(() => null);
      if (machine.serial) cleanup.push('serial console', () => machine.serial?.close());
      machine.legacyUserNet = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`id=${LEGACY_NETDEV},`);
      void exited.then(() => machine.onExit('QEMU process exited'));
      return machine;
    } catch (err) {
      await cleanup.run().catch(() => undefined);
      throw err;
    }
  }

  /** Let go of the VM without stopping it (server shutdown): the next server re-adopts it. */
  detach(): void {
    this.stopping = true;
    this.qmp.close();
    this.agent.close();
    this.serial?.close();
  }

  /**
   * Suspend to `targetDir` (QEMU's user must be able to use it: a resume adopts the disk in place):
   * pause, save RAM and device state to `state.partial` (fsynced), publish (the disk overlay and its base
   * links moved beside it, the state renamed into place last, the directory fsynced), and return; QEMU
   * quits and everything else is released after (`stopped`). A VM launched from a snapshot writes only
   * the pages it dirtied, found without QEMU reading its RAM (paused-state.ts). If saving fails the guest
   * is resumed and the error thrown: the VM keeps running and loses nothing. Once saved, the state is
   * the VM: QEMU dying after that loses nothing.
   */
  async suspend(targetDir: string, opts: SuspendOptions = {}): Promise<SuspendedFiles> {
    const statePath = path.join(targetDir, 'state');
    const diskPath = path.join(targetDir, 'disk.qcow2');
    const partial = `${statePath}.partial`;
    const atStep = opts.atStep ?? (() => Promise.resolve());
    let ram: RamDeltaStats | null;
    const steps = new StepTimer();
    await this.qmp.execute('stop');
    steps.done('pause');
    try {
      await atStep('paused');
      fs.mkdirSync(targetDir, { recursive: true, mode: 0o700 });
      ram = await savePausedState(this, partial, steps);
    } catch (err) {
      fs.rmSync(partial, { force: true });
      await this.qmp.execute('cont').catch(() => undefined);
      throw err;
    }
    // from here the saved state is the VM: QEMU's end is no loss, and it is published with its disk
    this.stopping = true;
    await atStep('saved');
    try {
      moveBase(path.dirname(this.overlayPath), targetDir);
      if (this.overlayPath !== diskPath) fs.renameSync(this.overlayPath, diskPath);
      fsyncPath(diskPath);
      if (this.legacyUserNet) fs.writeFileSync(path.join(targetDir, LEGACY_MARK), '');
      // the jail of its resume must bind this layer (unless it is a base link, which moved along): said by
      // the server here, never read from the overlay a VM can rewrite
      if (this.backing && path.dirname(this.backing) !== path.dirname(this.overlayPath))
        fs.writeFileSync(path.join(targetDir, BACKING_RECORD), this.backing, { mode: 0o600 });
      await atStep('moved');
      fs.renameSync(partial, statePath);
      fsyncPath(targetDir);
    } catch (err) {
      // half moved (the suspend directory on another filesystem, say): the VM cannot go on, so it ends
      await this.stop();
      throw err;
    }
    steps.done('publish');
    await atStep('published');
    const stopped = this.quitQemu()
      .then(() => this.cleanup.run())
      .catch(() => undefined);
    return { statePath, diskPath, ram, stepsMs: steps.ms, stopped };
  }

  async hold(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async claim(jail: VmJail | null): Promise<void> {
    if (!this.launched) throw new Error('only a VM this server launched can be claimed');
    await this.qmp.execute('cont');
    // it was given its own hostname, MAC and entropy when it was made, and has run alone since: only its clock stood
    // still while it was paused. Its cgroup moves while the guest takes the clock.
    const fixedUp = this.agent.setClock(Date.now(), RESTORE_TIMEOUT_MS);
    try {
      if (jail && this.ownCgroup) {
        this.cleanup.push('cgroup', () => jail.cgroup.remove());
        jail.cgroup.takeOver(this.pid, this.ownCgroup, jail.limits(this.launched));
        this.ownCgroup = jail.cgroup;
      }
    } finally {
      await fixedUp;
    }
  }

  /**
   * Pause the guest and write its device state (RAM stays in the shared memory file). The VM stays
   * paused; the caller stops it. Only for a VM launched with a shared file memory backend.
   */
  async saveReadySnapshot(statePath: string): Promise<void> {
    await this.qmp.execute('stop');
    await saveDeviceState(this.qmp, vmPaths(this.vmDir).outgoing, statePath, { ignoreShared: true, timeoutMs: 60_000 });
  }

  /** Stop the VM: ask QEMU to quit, kill it if it does not, release everything. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.quitQemu();
    await this.cleanup.run();
  }

  /** Ask QEMU to quit, SIGKILL it if it has not within QUIT_GRACE_MS, and wait until it is gone. */
  private async quitQemu(): Promise<void> {
    if (!this.hasExited) await Promise.race([this.qmp.execute('quit').catch(() => undefined), sleep(QUIT_GRACE_MS)]);
    if (!this.hasExited) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await this.exited;
  }

  private onExit(reason: string): void {
    this.hasExited = true;
    // killed by the kernel for its cgroup's memory limit: say so, with the limit
    const oom = this.cgroup?.oomReason();
    const cause =
      oom ?? (this.violation ? `the guest broke the agent protocol (${this.violation}), so Capsule stopped it` : null);
    this.exitReason = cause ? `${cause}: ${reason}` : reason;
    if (this.stopping) return;
    for (const l of this.exitListeners) l(this.exitReason);
    this.exitListeners = [];
  }
}

// Recovery at start-up, after a clean stop or a crash of the previous server, and where a suspended
// VM's files live. Only this host's MicroVMs (hostId) are its business. RUNNING VMs whose QEMU still runs
// are re-adopted; a suspend cut short is completed if its state was published, else the paused VM is
// resumed; SUSPENDED VMs (on disk) stay resumable. Only what cannot be taken back is FAILED. VMs another
// node recorded FAILED while this host was down (host-lease.ts) are stopped and their files removed.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { MicroVMRecord, Store } from '../store/types.js';
import type { SuspendedStates } from './suspended-transfer.js';
import { isQemuProcessOf } from '../vmm/machine.js';
import type { Hypervisor, Vm } from '../vmm/vm.js';
import { vmPaths } from '../vmm/qemu-args.js';
import { LIVE_STATES } from '../store/states.js';
import type { VmNetworkPort } from './network-ops.js';
import type { Jailer } from '../jail/jailer.js';
import type { RunningVms } from './running-vms.js';

export interface SuspendFiles {
  statePath: string;
  diskPath: string;
  /** Both present: the suspend completed. */
  published: boolean;
}

/** Where a suspended VM's state and disk live (and its disk keeps living after a resume). */
export function suspendDirOf(suspendedDir: string, id: string): string {
  return path.join(suspendedDir, id);
}

/** The files a suspend publishes; the state file is renamed into place last. */
export function suspendFilesOf(suspendedDir: string, id: string): SuspendFiles {
  const dir = suspendDirOf(suspendedDir, id);
  const statePath = path.join(dir, 'state');
  const diskPath = path.join(dir, 'disk.qcow2');
  return { statePath, diskPath, published: fs.existsSync(statePath) && fs.existsSync(diskPath) };
}

async function killLeftover(record: MicroVMRecord, jailer: Jailer): Promise<void> {
  if (record.qemuPid && record.vmDir && isQemuProcessOf(record.qemuPid, record.vmDir)) {
    try {
      process.kill(record.qemuPid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // its cgroup outlives a server that died: empty it (the kill above may still be landing) and remove it
  await jailer.cgroupOf(record)?.remove();
  if (record.vmDir) fs.rmSync(record.vmDir, { recursive: true, force: true });
}

/**
 * Every VM with files keeps its uid: claims are machine-wide and live in /run, so after a reboot they
 * are made again; one another server took meanwhile is given up (the VM gets a new uid on resume).
 */
async function reclaimUids(store: Store, hostId: string, jailer: Jailer, log: Logger): Promise<void> {
  if (!jailer.uids) return;
  const holding = await store.listMicroVMsInStates([...LIVE_STATES, 'SUSPENDED'], hostId);
  for (const record of holding) {
    if (record.jailUid === null || jailer.uids.reclaim(record.jailUid, record.id)) continue;
    log.warn("a MicroVM's uid is held by someone else now; it gets a new one when it resumes", {
      id: record.id,
      uid: record.jailUid,
    });
    await store.updateMicroVM(record.id, { jailUid: null });
  }
  jailer.uids.sweep(new Set(holding.map((r) => r.id)));
}

export async function recoverMicroVMs(ctx: {
  store: Store;
  log: Logger;
  suspendedDir: string;
  networks: VmNetworkPort;
  hypervisor: Hypervisor;
  jailer: Jailer;
  hostId: string;
  /** Suspended state for other hosts: what this host suspended but had not published yet goes now. */
  suspendedStates: SuspendedStates | null;
  adopt(record: MicroVMRecord, machine: Vm): void;
}): Promise<void> {
  const { store, log, networks, jailer, hostId } = ctx;
  await reclaimUids(store, hostId, jailer, log);
  await sweepSuspendedDirs(ctx);
  // a suspend answers once its state is durable; its QEMU's exit and namespace's release follow, and a
  // server that died in between left them: they go now. So do VMs given up with this host while it was down, and
  // those another server terminated meanwhile (host-gone.ts).
  for (const record of await store.listMicroVMsLeftHolding(hostId)) {
    if (record.state !== 'SUSPENDED')
      fs.rmSync(suspendDirOf(ctx.suspendedDir, record.id), { recursive: true, force: true });
    await killLeftover(record, jailer);
    await networks.release(record.id, record.netSlot);
    await store.updateMicroVM(record.id, { qemuPid: null, netSlot: null });
    log.warn(`released what a ${record.state} MicroVM still held after restart`, { id: record.id });
  }
  for (const record of await store.listMicroVMsInStates([...LIVE_STATES], hostId)) {
    const dir = suspendDirOf(ctx.suspendedDir, record.id);
    const suspended = suspendFilesOf(ctx.suspendedDir, record.id);
    if (record.state === 'SUSPENDING' && suspended.published) {
      await killLeftover(record, jailer);
      await networks.release(record.id, record.netSlot);
      await store.transition(record.id, 'SUSPENDING', 'SUSPENDED', {
        qemuPid: null,
        netSlot: null,
        suspendedAt: new Date().toISOString(),
      });
      log.warn('completed an interrupted suspend after restart', { id: record.id });
      continue;
    }
    if ((record.state === 'RUNNING' || record.state === 'SUSPENDING') && record.qemuPid && record.vmDir) {
      // still running (or paused by a suspend cut short): take it back; after a resume the VM's disk
      // stays where the suspend put it
      const overlay = fs.existsSync(suspended.diskPath) ? suspended.diskPath : vmPaths(record.vmDir).overlay;
      try {
        const machine = await ctx.hypervisor.adopt(record.vmDir, record.qemuPid, overlay, jailer.cgroupOf(record));
        try {
          if (record.netSlot === null) throw new Error('it has no network namespace on record');
          await networks.adopt(record.id, record.netSlot, record.network);
        } catch (err) {
          await machine.stop();
          throw err;
        }
        fs.rmSync(path.join(dir, 'state.partial'), { force: true });
        if (record.state === 'SUSPENDING') await store.transition(record.id, 'SUSPENDING', 'RUNNING');
        ctx.adopt(record, machine);
        log.info('re-adopted running MicroVM', { id: record.id, pid: record.qemuPid, was: record.state });
        continue;
      } catch (err) {
        log.warn('could not re-adopt MicroVM', { id: record.id, error: (err as Error).message });
      }
    }
    await killLeftover(record, jailer);
    fs.rmSync(dir, { recursive: true, force: true });
    jailer.releaseUid(record.jailUid, record.id);
    await networks.release(record.id, record.netSlot);
    await store.transition(record.id, record.state, 'FAILED', {
      netSlot: null,
      failureReason:
        `the server restarted while this MicroVM was ${record.state} and its VM could not be ` +
        `taken back; it was stopped`,
      qemuPid: null,
    });
    log.warn('marked MicroVM failed after restart', { id: record.id, was: record.state });
  }
  for (const record of await store.listMicroVMsInStates(['SUSPENDED'], hostId)) {
    let shared = record.suspendedBlob;
    // held by a resume this server ran when it went down: nothing resumes it now, so it is movable again
    if (shared === '') {
      await store.updateMicroVM(record.id, { suspendedBlob: null });
      shared = null;
      log.info('released the hold of a resume cut short', { id: record.id });
    }
    if (ctx.suspendedStates && shared === null && suspendFilesOf(ctx.suspendedDir, record.id).published)
      ctx.suspendedStates.publishLater({ ...record, suspendedBlob: null }, suspendDirOf(ctx.suspendedDir, record.id));
  }
}

/**
 * Suspend directories no VM of this host needs: its record gone, ended, or (`moved`) moved to another host while
 * this one was down (take-over.ts; only at start: a take-over under way fetches into a directory of another host's
 * VM). A resumed VM's disk stays in its suspend directory, so RUNNING ones keep theirs.
 */
async function sweepSuspendedDirs(
  ctx: { store: Store; log: Logger; suspendedDir: string; hostId: string },
  moved = true,
) {
  const ids = fs.existsSync(ctx.suspendedDir) ? fs.readdirSync(ctx.suspendedDir) : [];
  for (const id of ids) {
    const record = await ctx.store.getMicroVM(id);
    const ended = !record || record.state === 'TERMINATED' || record.state === 'FAILED';
    if (!ended && (!moved || record.hostId === null || record.hostId === ctx.hostId)) continue;
    fs.rmSync(suspendDirOf(ctx.suspendedDir, id), { recursive: true, force: true });
    ctx.log.info('removed a suspended state this host no longer holds', { id, hostId: record?.hostId ?? null });
  }
}

/**
 * This host was given up as down while it ran (host-lease.ts): every VM it runs whose record is no longer
 * live (another node recorded it FAILED, "host … lost") is stopped, and what it held is released; so are the
 * suspended files of VMs another server terminated meanwhile (host-gone.ts).
 */
export async function stopGivenUpVms(ctx: {
  store: Store;
  log: Logger;
  networks: VmNetworkPort;
  jailer: Jailer;
  running: RunningVms;
  suspendedDir: string;
  hostId: string;
}): Promise<void> {
  for (const [id, machine] of [...ctx.running.entries()]) {
    const record = await ctx.store.getMicroVM(id);
    if (record && (LIVE_STATES as readonly string[]).includes(record.state)) continue;
    ctx.running.forget(id);
    await machine.stop();
    await ctx.networks.release(id, record?.netSlot ?? null);
    ctx.jailer.releaseUid(record?.jailUid ?? null, id);
    if (record) await ctx.store.updateMicroVM(id, { qemuPid: null, netSlot: null });
    ctx.log.warn('stopped a MicroVM this host no longer runs', { id, state: record?.state ?? 'gone' });
  }
  await sweepSuspendedDirs(ctx, false);
}

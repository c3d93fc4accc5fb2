// Saving a paused VM's RAM and device state to a file (fsynced) — the part of a suspend before it is
// published (machine.ts). A clone over a snapshot's memory: the server writes the state itself, from its
// dirtied pages and QEMU's device state (over-base-state.ts). Otherwise QEMU's migration stream, minus the
// pages equal to the base memory where there is one (ram-delta.ts), or whole (a cold-booted VM).
import fs from 'node:fs';
import path from 'node:path';
import { readBounded } from '../jail/vm-files.js';
import { baseMemoryBeside, baseStateBeside } from './base-layers.js';
import { dirtyRam } from './dirty-ram.js';
import { saveDeviceState } from './migration.js';
import { RamStreamFormatError } from './migration-stream.js';
import {
  DEVICE_STATE_MAX_BYTES,
  deviceSections,
  pagesOf,
  snapshotStreamHead,
  writeOverBaseState,
} from './over-base-state.js';
import { RAM_BACKEND_ID, vmPaths } from './qemu-args.js';
import type { QmpClient } from './qmp.js';
import { RamDeltaFilter, type RamDeltaStats } from './ram-delta.js';
import type { StepTimer } from './step-timer.js';

/** The paused VM: its QEMU process and QMP, its directory and its disk overlay (base links beside it). */
interface PausedVm {
  pid: number;
  qmp: QmpClient;
  vmDir: string;
  overlayPath: string;
}

/** Save to `file`; the pages written and left to the base (null: all of RAM was written). */
export async function savePausedState(vm: PausedVm, file: string, steps: StepTimer): Promise<RamDeltaStats | null> {
  const overBase = await saveOverBase(vm, file, steps).catch((err: Error) => {
    // a snapshot head this server cannot parse: the stream path needs no parsing of it
    if (err instanceof RamStreamFormatError) return undefined;
    throw err;
  });
  if (overBase !== undefined) return overBase;
  const ram = await saveStream(vm, file);
  steps.done('stream');
  return ram;
}

/**
 * The state of a clone over its snapshot's memory: its dirtied pages and QEMU's device state. Undefined
 * when it has no base state (cold-booted, or launched before base states were linked).
 */
async function saveOverBase(vm: PausedVm, file: string, steps: StepTimer): Promise<RamDeltaStats | undefined> {
  const base = baseStateBeside(vm.overlayPath);
  if (!base) return undefined;
  const ramBytes = fs.statSync(base.memoryPath).size;
  const head = snapshotStreamHead(base.statePath, RAM_BACKEND_ID, ramBytes);
  const devices = deviceSections(await saveDevices(vm));
  steps.done('devices');
  const dirty = dirtyRam(vm.pid, base.memoryPath, ramBytes);
  steps.done('scan');
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    const pages = pagesOf(vm.pid, dirty);
    const ram = writeOverBaseState(fd, { head, blockName: RAM_BACKEND_ID, pages, devices, ramBytes });
    steps.done('write');
    fs.fsyncSync(fd);
    steps.done('fsync');
    return ram;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * QEMU's device state (every device, no RAM), through a file the server makes in run/ (sealed: QEMU may
 * write this file, not replace it) and reads back bounded.
 */
async function saveDevices(vm: PausedVm): Promise<Buffer> {
  const file = path.join(vmPaths(vm.vmDir).run, 'devices.state');
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600);
  fs.fchmodSync(fd, 0o666); // QEMU's uid writes it; only QEMU's own jail sees run/
  fs.closeSync(fd);
  try {
    // live: false, or QEMU would hand its disks over as for a migration and a failed suspend could not go on
    await vm.qmp.execute('xen-save-devices-state', { filename: file, live: false });
    return readBounded(file, DEVICE_STATE_MAX_BYTES);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** QEMU's migration stream, minus the RAM pages equal to the base memory (if any): ram-delta.ts. */
async function saveStream(vm: PausedVm, file: string): Promise<RamDeltaStats | null> {
  const base = baseMemoryBeside(vm.overlayPath);
  const save = (filter?: RamDeltaFilter): Promise<void> =>
    saveDeviceState(vm.qmp, vmPaths(vm.vmDir).outgoing, file, {
      ignoreShared: false,
      timeoutMs: 10 * 60_000,
      filter,
    });
  const filter = base ? new RamDeltaFilter(base, RAM_BACKEND_ID) : undefined;
  return save(filter).then(
    () => filter?.stats ?? null,
    (err: Error) => {
      // a stream this filter does not understand is saved whole: slower, never lost
      if (!(err instanceof RamStreamFormatError)) throw err;
      return save().then(() => null);
    },
  );
}

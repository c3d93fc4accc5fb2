// A VM's disk before its QEMU starts: the overlay it writes, the frozen layer that overlay chains on
// (a ready snapshot's disk, an image layer, the runtime's read-only image: never a copy) and the memory
// file it maps. A resume adopts the overlay its suspend left, chained as that suspend recorded.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { readTail } from '../jail/vm-files.js';
import { baseDiskBeside, baseMemoryBeside, linkBase } from './base-layers.js';
import type { LaunchOptions } from './launch-options.js';
import { type MachineSpec, vmPaths } from './qemu-args.js';

const execFileAsync = promisify(execFile);

/** Beside a suspended state: the frozen layer its overlay chains on (a snapshot disk not linked beside it). */
export const BACKING_RECORD = 'backing';

function recordedBacking(diskPath: string): string | null {
  const record = readTail(path.join(path.dirname(diskPath), BACKING_RECORD), 4096);
  return record === '' ? null : record;
}

export async function prepareDisk(
  opts: LaunchOptions,
): Promise<{ overlayPath: string; memory: MachineSpec['memory']; backing: string }> {
  const paths = vmPaths(opts.vmDir);
  const restore = opts.restore;
  const overlayPath = restore?.kind === 'suspended' ? restore.diskPath : (opts.overlayPath ?? paths.overlay);
  let memory = opts.memory;
  // the frozen layer the overlay chains on (a snapshot's disk, an image layer, the runtime's image)
  let backing = opts.baseDisk ?? opts.rootfsPath;
  if (restore?.kind === 'suspended') {
    // launched from a snapshot: the suspend saved only what differs from this base memory
    const base = baseMemoryBeside(restore.diskPath);
    if (base) memory = { kind: 'file', path: base, share: false };
    backing = baseDiskBeside(restore.diskPath) ?? recordedBacking(restore.diskPath) ?? backing;
  } else {
    // the overlay chains on the snapshot's frozen layer, or on the runtime's read-only image: no copy
    let backingFormat = opts.baseDisk ? 'qcow2' : 'raw';
    let backingName = backing;
    if (restore) {
      const linked = linkBase(path.dirname(overlayPath), restore);
      backing = linked ? path.join(path.dirname(overlayPath), linked.diskBacking) : restore.diskPath;
      [backingFormat, backingName] = ['qcow2', linked?.diskBacking ?? restore.diskPath];
      memory = { kind: 'file', path: linked?.memoryPath ?? restore.memoryPath, share: false };
    }
    await execFileAsync(opts.qemuImgBinary, [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      backingFormat,
      '-b',
      backingName,
      overlayPath,
    ]).catch((err) => {
      throw new CapsuleError(ErrorCode.BOOT_FAILED, 'could not create the disk overlay', {
        step: 'overlay',
        cause: err,
      });
    });
  }
  return { overlayPath, memory, backing };
}

// A VM launched from a ready snapshot keeps its own hard links to the snapshot's memory file, disk layer
// and device state, beside its disk overlay. They cost nothing (no copy), they follow the overlay when a
// suspend moves it, and they keep the exact bytes the VM depends on alive even if the snapshot is later
// pruned or rebuilt: the overlay chains on its base by a relative name, a suspend's memory delta is only
// meaningful against the same base memory, and the state it writes starts with that snapshot's head.
import fs from 'node:fs';
import path from 'node:path';

const BASE_MEMORY = 'base-memory';
const BASE_DISK = 'base-disk.qcow2';
/** The snapshot's device state: its stream's head starts every state a suspend writes over the base memory. */
const BASE_STATE = 'base-state';

export interface LinkedBase {
  memoryPath: string;
  /** The overlay's backing file name, relative to the overlay's directory. */
  diskBacking: string;
}

/**
 * Link the snapshot's files into `dir` (the overlay's directory). Null when they are on another
 * filesystem: the caller then uses the snapshot's own paths and a suspend saves all of RAM.
 */
export function linkBase(
  dir: string,
  snapshot: { memoryPath: string; diskPath: string; statePath: string },
): LinkedBase | null {
  try {
    fs.linkSync(snapshot.memoryPath, path.join(dir, BASE_MEMORY));
    fs.linkSync(snapshot.diskPath, path.join(dir, BASE_DISK));
    fs.linkSync(snapshot.statePath, path.join(dir, BASE_STATE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    for (const name of [BASE_MEMORY, BASE_DISK]) fs.rmSync(path.join(dir, name), { force: true });
    return null;
  }
  return { memoryPath: path.join(dir, BASE_MEMORY), diskBacking: BASE_DISK };
}

/** The base memory an overlay's VM was launched over, if it has one. */
export function baseMemoryBeside(overlayPath: string): string | null {
  const memoryPath = path.join(path.dirname(overlayPath), BASE_MEMORY);
  return fs.existsSync(memoryPath) ? memoryPath : null;
}

/**
 * The base memory and the snapshot state it was saved with, if the overlay's VM has both (a VM launched
 * before base states were linked has only the memory: its suspends take the stream path).
 */
export function baseStateBeside(overlayPath: string): { memoryPath: string; statePath: string } | null {
  const memoryPath = baseMemoryBeside(overlayPath);
  const statePath = path.join(path.dirname(overlayPath), BASE_STATE);
  return memoryPath && fs.existsSync(statePath) ? { memoryPath, statePath } : null;
}

/** The snapshot disk layer an overlay's VM was launched over (its backing file), if it has one. */
export function baseDiskBeside(overlayPath: string): string | null {
  const diskPath = path.join(path.dirname(overlayPath), BASE_DISK);
  return fs.existsSync(diskPath) ? diskPath : null;
}

/** Move the base links along with the overlay (same filesystem: renames). Before the overlay moves. */
export function moveBase(fromDir: string, toDir: string): void {
  if (fromDir === toDir) return;
  for (const name of [BASE_MEMORY, BASE_DISK, BASE_STATE]) {
    if (fs.existsSync(path.join(fromDir, name))) fs.renameSync(path.join(fromDir, name), path.join(toDir, name));
  }
}

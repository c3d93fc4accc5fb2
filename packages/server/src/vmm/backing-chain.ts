// The files under a disk layer: a qcow2 names its backing file in its header (offset and length at
// bytes 8 and 16); a raw image names none. Read only for layers the server made and froze (runtime
// images, image layers, snapshot disks): a VM's own overlay is its to rewrite, so what it names is never
// trusted. The jail bind-mounts exactly these files, read-only.
import fs from 'node:fs';
import path from 'node:path';

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const MAX_DEPTH = 16;

/** `file` and every layer under it, top first. */
export function backingChain(file: string): string[] {
  const chain: string[] = [];
  let current: string | null = path.resolve(file);
  while (current) {
    if (chain.includes(current) || chain.length >= MAX_DEPTH)
      throw new Error(`disk chain of ${file} loops or is deeper than ${MAX_DEPTH}`);
    chain.push(current);
    current = backingOf(current);
  }
  return chain;
}

/** The file a qcow2 names as its backing file (resolved beside it), or null: none, or not a qcow2. */
export function backingOf(file: string): string | null {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const header = Buffer.alloc(20);
    if (fs.readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== QCOW2_MAGIC) return null;
    const offset = Number(header.readBigUInt64BE(8));
    const length = header.readUInt32BE(16);
    if (offset === 0 || length === 0) return null;
    if (length > 1023) throw new Error(`${file}: backing file name too long`);
    const name = Buffer.alloc(length);
    fs.readSync(fd, name, 0, length, offset);
    return path.resolve(path.dirname(file), name.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

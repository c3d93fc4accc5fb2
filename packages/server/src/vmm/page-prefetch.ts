// The pages of a snapshot's memory file a restored guest actually uses, recorded once and read ahead at later
// restores (as AWS prefetches what its validate step touched). Recording: the QEMU process maps the memory file
// privately, and its page table says which pages of that mapping are present (/proc/PID/pagemap, bit 63):
// those the guest read or wrote since the restore. Prefetching: reading those ranges of the file pulls them into
// the page cache, in the background while QEMU loads its device state, so the guest's first faults find them
// there instead of on the disk (or in an S3-backed blob cache just fetched).
import fs from 'node:fs';

const PAGE_BYTES = 4096;
const PRESENT = 1n << 63n;
const READ_CHUNK_BYTES = 1 << 20;

/** [offset, length] in bytes of the memory file, sorted and disjoint. */
export type PageRanges = Array<[number, number]>;

interface Mapping {
  start: number;
  end: number;
  fileOffset: number;
}

/** The mappings of the file with this inode in a /proc/PID/maps text. */
export function mappingsOf(maps: string, inode: number): Mapping[] {
  const found: Mapping[] = [];
  for (const line of maps.split('\n')) {
    const [range, , offset, , ino] = line.split(/\s+/);
    if (!range || Number(ino) !== inode) continue;
    const [start, end] = range.split('-').map((hex) => Number.parseInt(hex, 16));
    found.push({ start, end, fileOffset: Number.parseInt(offset, 16) });
  }
  return found;
}

/** The file ranges whose pagemap entries (one little-endian u64 per page of `mapping`) say present. */
export function presentRanges(mapping: Mapping, pagemap: Buffer): PageRanges {
  const ranges: PageRanges = [];
  for (let page = 0; page * 8 + 8 <= pagemap.length; page++) {
    if ((pagemap.readBigUInt64LE(page * 8) & PRESENT) === 0n) continue;
    const offset = mapping.fileOffset + page * PAGE_BYTES;
    const last = ranges[ranges.length - 1];
    if (last && last[0] + last[1] === offset) last[1] += PAGE_BYTES;
    else ranges.push([offset, PAGE_BYTES]);
  }
  return ranges;
}

/** The pages of `file` that process `pid` has present in its mappings of it now (root reads any process's). */
export function touchedRanges(pid: number, file: string): PageRanges {
  const inode = fs.statSync(file).ino;
  const all: PageRanges = [];
  const pagemap = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    for (const mapping of mappingsOf(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'), inode)) {
      const entries = Buffer.alloc(((mapping.end - mapping.start) / PAGE_BYTES) * 8);
      fs.readSync(pagemap, entries, 0, entries.length, (mapping.start / PAGE_BYTES) * 8);
      all.push(...presentRanges(mapping, entries));
    }
  } finally {
    fs.closeSync(pagemap);
  }
  return all.sort((a, b) => a[0] - b[0]);
}

export function totalBytes(ranges: PageRanges): number {
  return ranges.reduce((sum, [, length]) => sum + length, 0);
}

/** Read `ranges` of `file` (into the page cache); resolves with the bytes read. Never rejects: it is only a hint. */
export async function prefetch(file: string, ranges: PageRanges): Promise<number> {
  let read = 0;
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const handle = await fs.promises.open(file, 'r').catch(() => null);
  if (!handle) return 0;
  try {
    for (const [offset, length] of ranges)
      for (let at = 0; at < length; at += READ_CHUNK_BYTES) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_CHUNK_BYTES, length - at), offset + at);
        read += bytesRead;
      }
  } catch {
    // a file replaced or truncated under us: the restore reads what it needs itself
  } finally {
    await handle.close();
  }
  return read;
}

// The guest RAM a clone has written since it was launched, read from outside its QEMU. A clone maps its
// snapshot's memory file privately: a page the guest (or QEMU for it) writes becomes an anonymous
// copy-on-write page, every other page is still the file's. /proc/PID/pagemap tells the two apart
// (present or swapped, and not file-backed), so the dirtied set is known without QEMU reading and
// comparing all of RAM, and /proc/PID/mem reads just those pages. Root reads both (ptrace access);
// the VM must be paused, so nothing changes under the scan.
import fs from 'node:fs';

export const PAGE_BYTES = 4096;
const PAGEMAP_ENTRY_BYTES = 8;
// high word of a pagemap entry: bit 63 present, 62 swapped, 61 file-page or shared-anon
const PRESENT_OR_SWAPPED = 0xc0000000;
const FILE_PAGE = 0x20000000;
/** Dirty runs closer than this many clean pages are read in one call (fewer syscalls, a little more copying). */
const MERGE_GAP_PAGES = 16;
const READ_WINDOW_BYTES = 1 << 20;

/** A run of dirtied pages: page indexes into the guest RAM block. */
export interface PageRun {
  firstPage: number;
  pageCount: number;
}

export interface DirtyRam {
  /** Where the RAM block is mapped in QEMU. */
  address: number;
  runs: PageRun[];
  pages: number;
}

/** Where `pid` maps the file with inode `ino` (on `dev`) in one piece of `bytes`; throws if it does not. */
function mappingOf(pid: number, file: fs.Stats, bytes: number): number {
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    // start-end perms offset major:minor inode path
    const [range, , offset, , inode] = line.split(/\s+/);
    if (!inode || Number(inode) !== file.ino || Number.parseInt(offset, 16) !== 0) continue;
    const [start, end] = range.split('-').map((x) => Number.parseInt(x, 16));
    if (end - start === bytes) return start;
  }
  throw new Error(`process ${pid} does not map its guest memory file (inode ${file.ino}) in one piece`);
}

/** The pages of `memoryPath`'s private mapping in `pid` that are the process's own (written since mapped). */
export function dirtyRam(pid: number, memoryPath: string, bytes: number): DirtyRam {
  const address = mappingOf(pid, fs.statSync(memoryPath), bytes);
  const pageCount = bytes / PAGE_BYTES;
  // one 64-bit entry per page, as [low, high] words (x86 is little-endian)
  const words = new Uint32Array(pageCount * 2);
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const bytesWanted = pageCount * PAGEMAP_ENTRY_BYTES;
    const read = fs.readSync(fd, words, 0, bytesWanted, (address / PAGE_BYTES) * PAGEMAP_ENTRY_BYTES);
    if (read !== bytesWanted) throw new Error(`short pagemap read (${read} of ${bytesWanted} bytes)`);
  } finally {
    fs.closeSync(fd);
  }
  const runs: PageRun[] = [];
  let pages = 0;
  let open: PageRun | null = null;
  for (let page = 0; page < pageCount; page++) {
    const high = words[page * 2 + 1];
    const own = (high & PRESENT_OR_SWAPPED) !== 0 && (high & FILE_PAGE) === 0;
    if (!own) {
      open = null;
      continue;
    }
    pages++;
    if (open) open.pageCount++;
    else runs.push((open = { firstPage: page, pageCount: 1 }));
  }
  return { address, runs, pages };
}

/**
 * Read the dirtied pages out of `pid` (paused) and hand each run's bytes to `onRun`, in page order. Runs a
 * few pages apart are read together; the buffers are reused, so `onRun` must consume them before it returns.
 */
export function readDirtyRam(pid: number, dirty: DirtyRam, onRun: (run: PageRun, bytes: Buffer) => void): void {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  const window = Buffer.allocUnsafe(READ_WINDOW_BYTES);
  try {
    let i = 0;
    while (i < dirty.runs.length) {
      // the runs that fit one read: each within MERGE_GAP_PAGES of the last, all within the window
      const first = dirty.runs[i].firstPage;
      let j = i;
      while (j + 1 < dirty.runs.length) {
        const next = dirty.runs[j + 1];
        const end = dirty.runs[j].firstPage + dirty.runs[j].pageCount;
        if (next.firstPage - end > MERGE_GAP_PAGES) break;
        if ((next.firstPage + next.pageCount - first) * PAGE_BYTES > READ_WINDOW_BYTES) break;
        j++;
      }
      const last = dirty.runs[j];
      const spanBytes = (last.firstPage + last.pageCount - first) * PAGE_BYTES;
      // a run longer than the window is read in window-sized pieces
      if (spanBytes > READ_WINDOW_BYTES) {
        readLongRun(fd, dirty.address, dirty.runs[i], window, onRun);
        i++;
        continue;
      }
      readExactly(fd, window, spanBytes, dirty.address + first * PAGE_BYTES);
      for (let k = i; k <= j; k++) {
        const run = dirty.runs[k];
        const at = (run.firstPage - first) * PAGE_BYTES;
        onRun(run, window.subarray(at, at + run.pageCount * PAGE_BYTES));
      }
      i = j + 1;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function readLongRun(
  fd: number,
  address: number,
  run: PageRun,
  window: Buffer,
  onRun: (run: PageRun, bytes: Buffer) => void,
): void {
  const windowPages = window.length / PAGE_BYTES;
  for (let done = 0; done < run.pageCount; done += windowPages) {
    const piece = { firstPage: run.firstPage + done, pageCount: Math.min(windowPages, run.pageCount - done) };
    readExactly(fd, window, piece.pageCount * PAGE_BYTES, address + piece.firstPage * PAGE_BYTES);
    onRun(piece, window.subarray(0, piece.pageCount * PAGE_BYTES));
  }
}

function readExactly(fd: number, into: Buffer, bytes: number, position: number): void {
  let got = 0;
  while (got < bytes) {
    const n = fs.readSync(fd, into, got, bytes - got, position + got);
    if (n === 0) throw new Error(`guest memory ended early at 0x${(position + got).toString(16)}`);
    got += n;
  }
}

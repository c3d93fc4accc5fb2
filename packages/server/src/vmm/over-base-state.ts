// A suspended clone's state, written by the server without QEMU reading its RAM: QEMU's own migration
// stream format (migration-stream.ts), so a resume loads it as it loads any state.
//   the head of the ready snapshot's stream  magic, version, configuration, the "ram" START section
//   one "ram" END section                    a record per page the guest dirtied (dirty-ram.ts)
//   QEMU's device state                      `xen-save-devices-state` (every device, no RAM), after its magic
// The snapshot was saved with x-ignore-shared, so its head says so and a resume loads with it on too; the
// clone's private mapping is not shared memory, so its loader takes the pages the stream carries and keeps
// the base file's for every other page, exactly as at the suspend.
import fs from 'node:fs';
import { type DirtyRam, PAGE_BYTES, type PageRun, readDirtyRam } from './dirty-ram.js';
import {
  FILE_HEADER_BYTES,
  FILE_MAGIC,
  FILE_VERSION,
  FLAG_CONTINUE,
  FLAG_EOS,
  FLAG_PAGE,
  FLAG_ZERO,
  findRamStart,
  parseRamSetup,
  RamStreamFormatError,
  readHead,
  SECTION_END,
  SECTION_FOOTER,
  ZERO_PAGE,
} from './migration-stream.js';
import type { RamDeltaStats } from './ram-delta.js';

const HEAD_SEARCH_BYTES = 1 << 20;
/** A device state larger than this is not one QEMU wrote for a microVM: refuse it. */
export const DEVICE_STATE_MAX_BYTES = 64 << 20;
const RECORD_HEADER_BYTES = 8;

/** The ready snapshot's stream up to the end of its "ram" START section, and that section's id. */
export interface StreamHead {
  bytes: Buffer;
  sectionId: number;
  footer: boolean;
}

/** Read the head of a snapshot's state (saved with x-ignore-shared), checking `blockName` is `ramBytes` long. */
export function snapshotStreamHead(statePath: string, blockName: string, ramBytes: number): StreamHead {
  const head = readHead(statePath, HEAD_SEARCH_BYTES);
  const start = findRamStart(head, 0);
  if (!start) throw new RamStreamFormatError(`no "ram" section at the start of ${statePath}`);
  const setup = parseRamSetup(head, start.bodyAt, start.sectionId, { ignoreShared: true });
  if (!setup) throw new RamStreamFormatError(`the "ram" section of ${statePath} does not end in its first MiB`);
  if (setup.blocks.get(blockName) !== BigInt(ramBytes))
    throw new RamStreamFormatError(`${statePath} has no ${ramBytes}-byte ram block ${blockName}`);
  const end = start.bodyAt + setup.length;
  return { bytes: Buffer.from(head.subarray(0, end)), sectionId: start.sectionId, footer: setup.footer };
}

/** The sections of a `xen-save-devices-state` file (through EOF), without its magic and version. */
export function deviceSections(deviceState: Buffer): Buffer {
  if (
    deviceState.length < FILE_HEADER_BYTES + 1 ||
    deviceState.readUInt32BE(0) !== FILE_MAGIC ||
    deviceState.readUInt32BE(4) !== FILE_VERSION
  )
    throw new RamStreamFormatError('the device state is not a QEMU device-state file');
  return deviceState.subarray(FILE_HEADER_BYTES);
}

/** The dirtied pages: how many, and a reader handing each run's bytes over in page order (readDirtyRam). */
export interface DirtyPages {
  count: number;
  read(onRun: (run: PageRun, bytes: Buffer) => void): void;
}

/** The pages `dirty` names, read out of paused `pid`. */
export function pagesOf(pid: number, dirty: DirtyRam): DirtyPages {
  return { count: dirty.pages, read: (onRun) => readDirtyRam(pid, dirty, onRun) };
}

/**
 * Write the state to `fd`: the snapshot's head, the dirtied pages, then the device sections. Returns the
 * pages written (pagesDropped: the pages left to the base file).
 */
export function writeOverBaseState(
  fd: number,
  opts: { head: StreamHead; blockName: string; pages: DirtyPages; devices: Buffer; ramBytes: number },
): RamDeltaStats {
  const { head, blockName, pages } = opts;
  write(fd, [head.bytes, sectionHeader(SECTION_END, head.sectionId)]);
  let first = true;
  pages.read((run, bytes) => {
    write(fd, pageRecords(run, bytes, blockName, first));
    first = false;
  });
  const eos = Buffer.alloc(8);
  eos.writeBigUInt64BE(BigInt(FLAG_EOS));
  write(fd, [eos, ...(head.footer ? [sectionHeader(SECTION_FOOTER, head.sectionId)] : []), opts.devices]);
  return { pagesKept: pages.count, pagesDropped: opts.ramBytes / PAGE_BYTES - pages.count };
}

function sectionHeader(type: number, sectionId: number): Buffer {
  const header = Buffer.alloc(5);
  header[0] = type;
  header.writeUInt32BE(sectionId, 1);
  return header;
}

/** One run's records: header + page, a zero page as a ZERO record; the block is named once, then CONTINUE. */
function pageRecords(run: PageRun, bytes: Buffer, blockName: string, nameFirst: boolean): Buffer[] {
  const out: Buffer[] = [];
  const headers = Buffer.alloc(run.pageCount * RECORD_HEADER_BYTES + 1 + blockName.length);
  let at = 0;
  for (let i = 0; i < run.pageCount; i++) {
    const page = bytes.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES);
    const zero = page[0] === 0 && page.equals(ZERO_PAGE); // most pages differ at once: skip the compare
    const named = nameFirst && i === 0;
    const offset = (run.firstPage + i) * PAGE_BYTES;
    const flags = (zero ? FLAG_ZERO : FLAG_PAGE) | (named ? 0 : FLAG_CONTINUE);
    headers.writeUInt32BE(Math.floor(offset / 2 ** 32), at);
    headers.writeUInt32BE((offset % 2 ** 32) + flags, at + 4);
    let end = at + RECORD_HEADER_BYTES;
    if (named) {
      headers[end] = blockName.length;
      headers.write(blockName, end + 1, 'latin1');
      end += 1 + blockName.length;
    }
    out.push(headers.subarray(at, end), zero ? ZERO_PAGE.subarray(0, 1) : page);
    at = end;
  }
  return out;
}

function write(fd: number, buffers: Buffer[]): void {
  const total = buffers.reduce((sum, b) => sum + b.length, 0);
  let written = fs.writevSync(fd, buffers);
  // a short write (rare: a signal, a full disk is an error) continues from where it stopped
  while (written < total) {
    const rest = Buffer.concat(buffers).subarray(written);
    written += fs.writeSync(fd, rest);
  }
}

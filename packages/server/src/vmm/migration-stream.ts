// QEMU's migration stream format, as far as Capsule reads and writes it (QEMU migration/savevm.c and
// migration/ram.c), big-endian throughout:
//   magic, version, configuration section
//   START section "ram": MEM_SIZE, the block list, EOS (+ footer)
//   PART / END sections of "ram": page records
//   FULL sections of every device, EOF, (vmdesc)
// A page record is be64 (offset | flags), the block name unless CONTINUE, then 1 byte (ZERO) or a page (PAGE).
// Section footers (0x7e + section id) follow each section on every machine type Capsule uses.
import fs from 'node:fs';

export const PAGE_SIZE = 4096;
export const FLAG_ZERO = 0x02;
const FLAG_MEM_SIZE = 0x04;
export const FLAG_PAGE = 0x08;
export const FLAG_EOS = 0x10;
export const FLAG_CONTINUE = 0x20;
export const FLAGS_MASK = 0xfff;
const SECTION_START = 0x01;
export const SECTION_PART = 0x02;
export const SECTION_END = 0x03;
export const SECTION_FOOTER = 0x7e;
export const FILE_MAGIC = 0x5145564d; // "QEVM"
export const FILE_VERSION = 3;
/** Magic and version: what every stream (and a device-state file) starts with. */
export const FILE_HEADER_BYTES = 8;
/** A page of zeros: what a ZERO record stands for. */
export const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
// START section header tail: idstr "ram", instance 0, version 4 (preceded by 0x01 and a be32 id)
const RAM_START = Buffer.from([3, 0x72, 0x61, 0x6d, 0, 0, 0, 0, 0, 0, 0, 4]);

/** The stream is not what Capsule understands: the caller falls back to a path that needs no parsing. */
export class RamStreamFormatError extends Error {}

/**
 * The ram START section's body from `start` (MEM_SIZE, block list, EOS, footer): its length, the
 * blocks' sizes and whether it has a footer, or null if `data` does not hold all of it yet. A stream
 * saved with x-ignore-shared carries each block's guest address too.
 */
export function parseRamSetup(
  data: Buffer,
  start: number,
  sectionId: number,
  opts: { ignoreShared: boolean },
): { length: number; blocks: Map<string, bigint>; footer: boolean } | null {
  let pos = start;
  if (data.length - pos < 8) return null;
  const head = data.readBigUInt64BE(pos);
  if ((Number(head & 0xfffn) & FLAG_MEM_SIZE) === 0) throw new RamStreamFormatError('ram setup without MEM_SIZE');
  const total = head & ~0xfffn;
  pos += 8;
  const perBlock = opts.ignoreShared ? 16 : 8;
  const blocks = new Map<string, bigint>();
  let sum = 0n;
  while (sum < total) {
    if (data.length - pos < 1 || data.length - pos < 1 + data[pos] + perBlock) return null;
    const name = data.toString('latin1', pos + 1, pos + 1 + data[pos]);
    pos += 1 + data[pos];
    const used = data.readBigUInt64BE(pos);
    pos += perBlock;
    blocks.set(name, used);
    sum += used;
  }
  if (sum !== total) throw new RamStreamFormatError(`ram block sizes add up to ${sum}, not ${total}`);
  if (data.length - pos < 8) return null;
  if (data.readBigUInt64BE(pos) !== BigInt(FLAG_EOS)) throw new RamStreamFormatError('ram setup does not end with EOS');
  pos += 8;
  const footer = footerLength(data, pos, sectionId);
  return footer < 0 ? null : { length: pos + footer - start, blocks, footer: footer > 0 };
}

/** Bytes of a section footer at `pos` (0 if there is none); -1 if `data` ends too early to tell. */
export function footerLength(data: Buffer, pos: number, sectionId: number): number {
  if (data.length - pos < 1) return -1;
  if (data[pos] !== SECTION_FOOTER) return 0;
  if (data.length - pos < 5) return -1;
  if (data.readUInt32BE(pos + 1) !== sectionId)
    throw new RamStreamFormatError('ram section footer with another section id');
  return 5;
}

/** Where the "ram" START section's header ends in `data` and its section id; null if it is not there. */
export function findRamStart(data: Buffer, from: number): { bodyAt: number; sectionId: number } | null {
  const at = data.indexOf(RAM_START, from);
  if (at < 0) return null;
  if (at - from < 5 || data[at - 5] !== SECTION_START) throw new RamStreamFormatError('"ram" is not a START section');
  return { bodyAt: at + RAM_START.length, sectionId: data.readUInt32BE(at - 4) };
}

const CAPABILITY_IGNORE_SHARED = Buffer.from('\x0fx-ignore-shared', 'latin1');

/** Up to the first `bytes` of `file`. */
export function readHead(file: string, bytes: number): Buffer {
  const head = Buffer.alloc(bytes);
  const fd = fs.openSync(file, 'r');
  try {
    return head.subarray(0, fs.readSync(fd, head, 0, bytes, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Whether the stream in `file` was saved with x-ignore-shared (its configuration section lists the
 * capabilities a load must have on): a ready snapshot's state, and a suspend's written over one.
 */
export function savedIgnoringShared(file: string): boolean {
  let data: Buffer;
  try {
    data = readHead(file, 4096);
  } catch {
    return false; // a missing state fails its load, with that error
  }
  const ram = data.indexOf(RAM_START);
  return data.subarray(0, ram < 0 ? data.length : ram).includes(CAPABILITY_IGNORE_SHARED);
}

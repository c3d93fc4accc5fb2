// The fallback of a suspend over a base memory (over-base-state.ts is the usual path): a VM launched from a
// ready snapshot before base states were linked beside it writes only the guest memory that differs from
// that snapshot, through QEMU's own migration stream. A migration sends every page of a private file
// mapping, although most of them are still the snapshot's (a launched Python VM has ~14 MiB of its 512 MiB
// dirtied, and the stream carries ~150 MiB). This filter sits between QEMU's migration stream and the state
// file and drops every RAM page record whose content equals the base memory file at that offset. A resume
// maps the same base file copy-on-write and loads the filtered stream: pages not in it keep the base
// content, exactly as before the suspend. The stream's layout is in migration-stream.ts: every section but
// the "ram" PART / END page records is copied as is. Kept records always carry their block name, since the
// record before them may be gone.
import fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import {
  FLAG_CONTINUE,
  FLAG_EOS,
  FLAG_PAGE,
  FLAG_ZERO,
  FLAGS_MASK,
  footerLength,
  PAGE_SIZE,
  parseRamSetup,
  findRamStart,
  RamStreamFormatError,
  SECTION_END,
  SECTION_PART,
  ZERO_PAGE,
} from './migration-stream.js';

const HEADER_SEARCH_LIMIT = 1 << 20;
const BASE_WINDOW = 1 << 20;

export interface RamDeltaStats {
  pagesKept: number;
  pagesDropped: number;
}

type Phase = 'header' | 'setup' | 'sections' | 'records' | 'rest';

export class RamDeltaFilter extends Transform {
  readonly stats: RamDeltaStats = { pagesKept: 0, pagesDropped: 0 };
  private phase: Phase = 'header';
  private pending = Buffer.alloc(0);
  private passed = 0;
  private sectionId = -1;
  private block = '';
  private readonly fd: number;
  private readonly baseBytes: number;
  private window = { start: -1, bytes: Buffer.alloc(BASE_WINDOW), length: 0 };

  /** `blockName`: the RAM block mapped from `basePath` (the memory backend's id). */
  constructor(
    basePath: string,
    private readonly blockName: string,
  ) {
    super();
    this.fd = fs.openSync(basePath, 'r');
    this.baseBytes = fs.fstatSync(this.fd).size;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      const out: Buffer[] = [];
      const used = this.parse(data, out);
      this.pending = Buffer.from(data.subarray(used));
      for (const piece of out) this.push(piece);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.phase !== 'rest')
      return callback(new RamStreamFormatError(`migration stream ended in phase ${this.phase}`));
    if (this.pending.length) this.push(this.pending);
    callback();
  }

  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    fs.closeSync(this.fd);
    callback(err);
  }

  /** Consume whole units from `data`, appending what to keep to `out`; returns the bytes consumed. */
  private parse(data: Buffer, out: Buffer[]): number {
    let pos = 0;
    for (;;) {
      if (this.phase === 'rest') {
        if (pos < data.length) out.push(data.subarray(pos));
        return data.length;
      }
      const used = this.step(data, pos, out);
      if (used === 0 && (this.phase as Phase) !== 'rest') return pos;
      pos += used;
    }
  }

  /** One unit (a header run, a section header, a record); 0 when `data` does not hold all of it yet. */
  private step(data: Buffer, pos: number, out: Buffer[]): number {
    const available = data.length - pos;
    switch (this.phase) {
      case 'header': {
        const found = findRamStart(data, pos);
        if (!found) {
          if (this.passed + available > HEADER_SEARCH_LIMIT)
            throw new RamStreamFormatError('no "ram" section at the start of the migration stream');
          return 0;
        }
        this.sectionId = found.sectionId;
        const end = found.bodyAt;
        out.push(data.subarray(pos, end));
        this.passed += end - pos;
        this.phase = 'setup';
        return end - pos;
      }
      case 'setup': {
        const length = this.setupLength(data, pos);
        if (length === 0) return 0;
        out.push(data.subarray(pos, pos + length));
        this.phase = 'sections';
        return length;
      }
      case 'sections': {
        if (available < 5) return 0;
        const type = data[pos];
        if ((type === SECTION_PART || type === SECTION_END) && data.readUInt32BE(pos + 1) === this.sectionId) {
          out.push(data.subarray(pos, pos + 5));
          this.phase = 'records';
          return 5;
        }
        this.phase = 'rest'; // devices, EOF and the vmdesc follow: no RAM from here on
        return 0;
      }
      case 'records':
        return this.record(data, pos, out);
      default:
        return 0;
    }
  }

  /** MEM_SIZE, the block list, EOS and the footer; 0 until all of it is in `data`. */
  private setupLength(data: Buffer, start: number): number {
    const setup = parseRamSetup(data, start, this.sectionId, { ignoreShared: false });
    if (!setup) return 0;
    const used = setup.blocks.get(this.blockName);
    if (used === undefined)
      throw new RamStreamFormatError(`ram block ${this.blockName} not in the stream's block list`);
    if (used !== BigInt(this.baseBytes))
      throw new RamStreamFormatError(`block ${this.blockName} is ${used} bytes, its base file ${this.baseBytes}`);
    return setup.length;
  }

  private record(data: Buffer, pos: number, out: Buffer[]): number {
    if (data.length - pos < 8) return 0;
    const low = data.readUInt32BE(pos + 4);
    const flags = low & FLAGS_MASK;
    if (flags & FLAG_EOS) {
      const footer = footerLength(data, pos + 8, this.sectionId);
      if (footer < 0) return 0;
      out.push(data.subarray(pos, pos + 8 + footer));
      this.phase = 'sections';
      return 8 + footer;
    }
    let length = 8;
    let block = this.block;
    if (!(flags & FLAG_CONTINUE)) {
      if (data.length - pos < 9 || data.length - pos < 9 + data[pos + 8]) return 0;
      block = data.toString('latin1', pos + 9, pos + 9 + data[pos + 8]);
      length += 1 + data[pos + 8];
    }
    const payload = flags & FLAG_PAGE ? PAGE_SIZE : flags & FLAG_ZERO ? 1 : -1;
    if (payload < 0 || (flags & ~(FLAG_PAGE | FLAG_ZERO | FLAG_CONTINUE)) !== 0)
      throw new RamStreamFormatError(`unsupported ram page flags 0x${flags.toString(16)}`);
    if (data.length - pos < length + payload) return 0;
    this.block = block;
    const offset = data.readUInt32BE(pos) * 2 ** 32 + (low - flags);
    const content = data.subarray(pos + length, pos + length + payload);
    if (
      block === this.blockName &&
      this.sameAsBase(offset, payload === 1 ? (content[0] === 0 ? ZERO_PAGE : null) : content)
    ) {
      this.stats.pagesDropped++;
    } else {
      this.stats.pagesKept++;
      const head = Buffer.alloc(9 + block.length);
      data.copy(head, 0, pos, pos + 8);
      head[7] &= ~FLAG_CONTINUE;
      head[8] = block.length;
      head.write(block, 9, 'latin1');
      out.push(head, content);
    }
    return length + payload;
  }

  private sameAsBase(offset: number, page: Buffer | null): boolean {
    if (!page || offset + PAGE_SIZE > this.baseBytes) return false;
    const w = this.window;
    if (offset < w.start || offset + PAGE_SIZE > w.start + w.length) {
      w.start = offset - (offset % BASE_WINDOW);
      w.length = fs.readSync(this.fd, w.bytes, 0, BASE_WINDOW, w.start);
      if (offset + PAGE_SIZE > w.start + w.length) return false;
    }
    return page.equals(w.bytes.subarray(offset - w.start, offset - w.start + PAGE_SIZE));
  }
}

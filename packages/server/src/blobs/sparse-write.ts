// A file written from a stream with its all-zero blocks left as holes: a VM's memory image is mostly zeros (a 512 MiB
// base held 373 MiB of zero 4 KiB blocks), so its local copy takes the disk of what the guest wrote, as the file it was
// made from did, and writing it costs no I/O for the rest.
import fs from 'node:fs';
import { Writable } from 'node:stream';

const BLOCK_BYTES = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK_BYTES);

/** A stream into a new `file` (mode `mode`) that skips zero blocks and sets the file's length at its end. */
export function sparseWriteStream(file: string, mode: number): Writable {
  const fd = fs.openSync(file, 'w', mode);
  let closed = false;
  const close = (): void => {
    if (!closed) fs.closeSync(fd);
    closed = true;
  };
  let position = 0; // where `carried` starts in the file
  let carried = Buffer.alloc(0); // the start of a block the next chunk completes
  /** `data` written at `at`, each run of non-zero blocks in one write. */
  const writeBlocks = (data: Buffer, at: number): void => {
    let runStart = -1;
    for (let offset = 0; offset <= data.length; offset += BLOCK_BYTES) {
      const block = data.subarray(offset, offset + BLOCK_BYTES);
      const zero = offset === data.length || block.equals(ZERO_BLOCK.subarray(0, block.length));
      if (!zero && runStart < 0) runStart = offset;
      if (zero && runStart >= 0) {
        fs.writeSync(fd, data, runStart, offset - runStart, at + runStart);
        runStart = -1;
      }
    }
  };
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      try {
        const data = carried.length > 0 ? Buffer.concat([carried, chunk]) : chunk;
        const whole = data.length - (data.length % BLOCK_BYTES);
        writeBlocks(data.subarray(0, whole), position);
        position += whole;
        carried = Buffer.from(data.subarray(whole));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    final(done) {
      try {
        writeBlocks(carried, position);
        fs.ftruncateSync(fd, position + carried.length);
        close();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    destroy(err, done) {
      try {
        close();
      } catch {
        // closed already
      }
      done(err);
    },
  });
}

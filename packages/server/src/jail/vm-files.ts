// Files a VM's uid can write (its console log, its disk overlay, anything in its run directory) are read
// by the root server only through these: never following a link (O_NOFOLLOW), never blocking on a FIFO
// (O_NONBLOCK), only regular files, and only a bounded tail. A guest that escapes QEMU and plants
// `serial.log -> /data/admin-key` gets ELOOP, not the key.
import fs from 'node:fs';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** The last `maxBytes` of a regular file, as text; '' if it is missing, a link, or not a regular file. */
export function readTail(file: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return '';
    const length = Math.min(st.size, Math.max(0, maxBytes));
    const buffer = Buffer.alloc(length);
    const read = fs.readSync(fd, buffer, 0, length, st.size - length);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** A whole regular file, refused (thrown) if it is a link, not a regular file, or larger than `maxBytes`. */
export function readBounded(file: string, maxBytes: number): Buffer {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes)
      throw new Error(`${file} is not a regular file of at most ${maxBytes} bytes`);
    const buffer = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buffer, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buffer.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** Give a file or directory to `uid` without following a link planted in its place. */
export function chownNoFollow(file: string, uid: number, gid: number): void {
  fs.lchownSync(file, uid, gid);
}

/** Bytes a file takes on disk (sparse overlays: allocated blocks, not their size); 0 if missing. */
export function allocatedBytes(file: string): number {
  try {
    return fs.lstatSync(file).blocks * 512;
  } catch {
    return 0;
  }
}

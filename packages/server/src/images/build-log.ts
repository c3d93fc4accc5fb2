// A build's log, bounded: the first `headBytes` go to the file as they come (a follower reads them
// live), the rest is kept as a ring of the last `tailBytes` and written at close, after a line saying
// how much was left out. A build printing without end costs at most head + tail on disk. Writes are
// synchronous and never throw: a full disk loses log lines, never the build or the server.
import fs from 'node:fs';

const BUILD_LOG_HEAD_BYTES = 2 * 1024 * 1024;
const BUILD_LOG_TAIL_BYTES = 1024 * 1024;

export class BuildLog {
  private fd: number | null;
  private writtenBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private omittedBytes = 0;

  constructor(
    file: string,
    private readonly headBytes = BUILD_LOG_HEAD_BYTES,
    private readonly maxTailBytes = BUILD_LOG_TAIL_BYTES,
  ) {
    try {
      this.fd = fs.openSync(
        file,
        fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
        0o600,
      );
      this.writtenBytes = fs.fstatSync(this.fd).size;
    } catch {
      this.fd = null;
    }
  }

  write(text: string): void {
    let bytes = Buffer.from(text);
    const room = this.headBytes - this.writtenBytes;
    if (room > 0) {
      this.append(bytes.subarray(0, room));
      bytes = bytes.subarray(room);
    }
    if (bytes.length === 0) return;
    this.tail.push(bytes);
    this.tailBytes += bytes.length;
    while (this.tailBytes - this.tail[0].length >= this.maxTailBytes) {
      this.omittedBytes += this.tail[0].length;
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  /** Write what the tail kept (after saying what was left out) and close. Idempotent. */
  close(): void {
    if (this.tail.length > 0) {
      let tail = Buffer.concat(this.tail);
      if (tail.length > this.maxTailBytes) {
        this.omittedBytes += tail.length - this.maxTailBytes;
        tail = tail.subarray(tail.length - this.maxTailBytes);
      }
      if (this.omittedBytes > 0)
        this.append(Buffer.from(`\n[… ${this.omittedBytes} bytes of build output left out …]\n`));
      this.append(tail);
      this.tail = [];
      this.tailBytes = 0;
    }
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private append(bytes: Buffer): void {
    if (this.fd === null || bytes.length === 0) return;
    try {
      fs.writeSync(this.fd, bytes);
      this.writtenBytes += bytes.length;
    } catch {
      // ENOSPC and the like: the line is lost, the build goes on
    }
  }
}

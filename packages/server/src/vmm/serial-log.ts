// A VM's serial console, kept by the server in a bounded log: QEMU serves the console on a socket in
// its run/ directory and the server appends what it reads to `serial.log` in the VM's directory (root's,
// outside the jail), rotating to `serial.log.1` at half the cap. A guest printing without end costs at
// most the cap on disk; while nobody reads the socket QEMU drops the output, and while the server is
// slow to read the guest's UART waits (backpressure), so the host never buffers it either.
import fs from 'node:fs';
import net from 'node:net';
import { readTail } from '../jail/vm-files.js';

/** The console bytes kept on disk per VM (current file + one rotated). */
export const SERIAL_LOG_MAX_BYTES = 1024 * 1024;

export class SerialLog {
  private fd: number | null = null;
  private sizeBytes = 0;
  /** Bytes the disk refused (ENOSPC…): the console is dropped, never the VM. */
  droppedBytes = 0;

  private constructor(
    private readonly socket: net.Socket,
    private readonly logPath: string,
    private readonly maxBytes: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.append(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.closeFile());
  }

  /** Start reading QEMU's console socket into `logPath` (appending: a re-adopted VM keeps its earlier console). */
  static connect(socketPath: string, logPath: string, maxBytes = SERIAL_LOG_MAX_BYTES): Promise<SerialLog> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SerialLog(socket, logPath, maxBytes));
      });
    });
  }

  close(): void {
    this.socket.destroy();
    this.closeFile();
  }

  private append(chunk: Buffer): void {
    try {
      if (this.fd === null) this.openFile();
      if (this.sizeBytes + chunk.length > this.maxBytes / 2) {
        this.closeFile();
        fs.renameSync(this.logPath, `${this.logPath}.1`);
        this.openFile();
      }
      const bytes = chunk.subarray(Math.max(0, chunk.length - this.maxBytes / 2)); // a chunk larger than half: its end
      fs.writeSync(this.fd!, bytes);
      this.sizeBytes += bytes.length;
    } catch {
      this.droppedBytes += chunk.length;
      this.closeFile();
    }
  }

  private openFile(): void {
    this.fd = fs.openSync(
      this.logPath,
      fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
      0o600,
    );
    this.sizeBytes = fs.fstatSync(this.fd).size;
  }

  private closeFile(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** The last `bytes` of a console log (the rotated file first, then the current one). */
export function serialLogTail(logPath: string, bytes: number): string {
  const current = readTail(logPath, bytes);
  const missing = bytes - Buffer.byteLength(current);
  return (missing > 0 ? readTail(`${logPath}.1`, missing) : '') + current;
}

// The agent's end of the virtio-serial port. Node cannot use the port as a socket, so this is a
// plain fd: one blocking read at a time in the pool, and one write at a time. A read of 0 bytes
// means no host is connected (QEMU's chardev has no client); the caller resets its state and we poll.
import fs from 'node:fs';
import path from 'node:path';

export const AGENT_PORT_NAME = 'org.capsule.agent';
const DISCONNECTED_POLL_MS = 20;

/** Find /dev/vportNpM for a named port from sysfs (no udev in the guest). */
export function findPortDevice(name: string, sysDir = '/sys/class/virtio-ports'): string | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(sysDir);
  } catch {
    return null;
  }
  for (const entry of entries) {
    try {
      if (fs.readFileSync(path.join(sysDir, entry, 'name'), 'utf8').trim() === name) return `/dev/${entry}`;
    } catch {
      // port without a name
    }
  }
  return null;
}

export interface PortHandlers {
  data(chunk: Buffer): void;
  /** The host side went away (or never came). */
  disconnected(): void;
}

export class Port {
  private readonly fd: number;
  private queue: Buffer[] = [];
  private writing = false;
  private connected = false;

  constructor(
    device: string,
    private readonly handlers: PortHandlers,
  ) {
    this.fd = fs.openSync(device, fs.constants.O_RDWR);
  }

  start(): void {
    const buffer = Buffer.allocUnsafe(256 * 1024);
    const readNext = (): void => {
      fs.read(this.fd, buffer, 0, buffer.length, null, (err, bytesRead) => {
        if (err || bytesRead === 0) {
          if (this.connected) {
            this.connected = false;
            this.queue = [];
            this.handlers.disconnected();
          }
          setTimeout(readNext, DISCONNECTED_POLL_MS);
          return;
        }
        this.connected = true;
        this.handlers.data(Buffer.from(buffer.subarray(0, bytesRead)));
        readNext();
      });
    };
    readNext();
  }

  write(frame: Buffer): void {
    this.queue.push(frame);
    if (!this.writing) this.flush();
  }

  private flush(): void {
    if (this.queue.length === 0) {
      this.writing = false;
      return;
    }
    this.writing = true;
    const batch = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
    this.queue = [];
    this.writeAll(batch, 0);
  }

  private writeAll(batch: Buffer, offset: number): void {
    fs.write(this.fd, batch, offset, batch.length - offset, null, (err, written) => {
      if (err) {
        // EAGAIN/EIO while the host is away: drop; the host resets its channels on reconnect.
        this.queue = [];
        this.writing = false;
        return;
      }
      if (offset + written < batch.length) this.writeAll(batch, offset + written);
      else this.flush();
    });
  }
}

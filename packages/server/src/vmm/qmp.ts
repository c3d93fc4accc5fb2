// Typed QMP client over the VM's unix socket: newline-delimited JSON, one command in flight per id.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The QMP commands Capsule uses, with their arguments and return values. */
export interface QmpCommands {
  qmp_capabilities: { args: undefined; ret: Record<string, never> };
  'query-status': { args: undefined; ret: { running: boolean; status: string } };
  'query-version': { args: undefined; ret: { qemu: { major: number; minor: number; micro: number }; package: string } };
  stop: { args: undefined; ret: Record<string, never> };
  cont: { args: undefined; ret: Record<string, never> };
  quit: { args: undefined; ret: Record<string, never> };
  system_powerdown: { args: undefined; ret: Record<string, never> };
  'migrate-set-capabilities': {
    args: { capabilities: Array<{ capability: 'x-ignore-shared'; state: boolean }> };
    ret: Record<string, never>;
  };
  'migrate-set-parameters': { args: { 'max-bandwidth': number }; ret: Record<string, never> };
  migrate: { args: { uri: string }; ret: Record<string, never> };
  'migrate-incoming': { args: { uri: string }; ret: Record<string, never> };
  'query-migrate': { args: undefined; ret: { status?: MigrationStatus; 'error-desc'?: string } };
  /** Every device's state, no RAM, to a file QEMU opens (despite the name, not Xen-specific). */
  'xen-save-devices-state': { args: { filename: string; live: boolean }; ret: Record<string, never> };
}

type MigrationStatus =
  | 'none'
  | 'setup'
  | 'active'
  | 'postcopy-active'
  | 'completed'
  | 'failed'
  | 'cancelling'
  | 'cancelled'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    desc: string,
  ) {
    super(`QMP ${command} failed: ${qmpClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

type Pending = { command: string; resolve: (v: unknown) => void; reject: (e: Error) => void };

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private eventListeners: Array<(e: QmpEvent) => void> = [];
  private greeted!: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    let greet!: () => void;
    this.greeted = new Promise((resolve) => (greet = resolve));
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) this.onMessage(JSON.parse(line), greet);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`QMP socket closed during ${p.command}`));
      this.pending.clear();
    });
  }

  /** Connect, retrying while QEMU creates the socket; `alive` stops the wait early if QEMU died. */
  static async connect(socketPath: string, timeoutMs: number, alive: () => boolean = () => true): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await client.greeted;
        await client.execute('qmp_capabilities');
        return client;
      } catch (err) {
        if (!alive() || Date.now() > deadline)
          throw new Error(`cannot connect to QMP at ${socketPath}: ${(err as Error).message}`);
        // QEMU makes its socket ~40 ms after it starts: a short retry keeps launches from waiting on the poll
        await sleep(2);
      }
    }
  }

  execute<K extends keyof QmpCommands>(
    command: K,
    ...args: QmpCommands[K]['args'] extends undefined ? [] : [QmpCommands[K]['args']]
  ): Promise<QmpCommands[K]['ret']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) return reject(new Error(`QMP socket closed before ${command}`));
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ execute: command, arguments: args[0], id }) + '\n');
    });
  }

  onEvent(listener: (e: QmpEvent) => void): void {
    this.eventListeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onMessage(msg: Record<string, unknown>, greet: () => void): void {
    if ('QMP' in msg) return greet();
    if ('event' in msg) {
      for (const l of this.eventListeners) l(msg as unknown as QmpEvent);
      return;
    }
    const pending = this.pending.get(msg.id as number);
    if (!pending) return;
    this.pending.delete(msg.id as number);
    if ('error' in msg) {
      const e = msg.error as { class: string; desc: string };
      pending.reject(new QmpError(pending.command, e.class, e.desc));
    } else pending.resolve(msg.return);
  }
}

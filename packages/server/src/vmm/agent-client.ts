// Host side of the guest-agent link: one unix socket to QEMU's virtio-serial chardev, multiplexed
// into channels. Every call validates the guest's replies with the shared schemas.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { channelDuplex } from '@capsule/protocol/node';
import { randomBytes } from 'node:crypto';
import {
  CapsuleError,
  ErrorCode,
  Fd,
  GuestReply,
  Mux,
  type AgentErrorCode,
  type AgentInfo,
  type Channel,
  type FileStat,
  type GuestRequestInput,
  type SignalName,
} from '@capsule/protocol';
import { guestMacAddress } from './qemu-args.js';

export interface ExecIo {
  stdin?: AsyncIterable<Buffer>;
  /** The agent must report the process started within this long, or the exec fails AGENT_UNREACHABLE. */
  startTimeoutMs?: number;
  /**
   * The host's own deadline for the whole command: past it the process is sent SIGKILL and the exec
   * fails AGENT_UNREACHABLE, whether or not the guest ever reports an exit (its timeoutMs is the guest's).
   */
  deadlineMs?: number;
  /** Return a promise to hold back the guest until the chunk is consumed (backpressure). */
  onStdout?(chunk: Buffer): void | Promise<unknown>;
  onStderr?(chunk: Buffer): void | Promise<unknown>;
}

interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
}

export interface ExecHandle {
  /** Resolves once the process is running (or rejects if it could not be started). */
  readonly pid: Promise<number>;
  readonly result: Promise<ExecResult>;
  signal(signal: SignalName): void;
  /** The terminal's new size (an exec started with `pty`). */
  resize(rows: number, cols: number): void;
}

const DEFAULT_EXEC_START_TIMEOUT_MS = 15_000;

/** Each agent code's API code: a Record over the enum, so a new agent code does not compile until mapped. */
const AGENT_CODES: Record<AgentErrorCode, ErrorCode> = {
  BAD_REQUEST: ErrorCode.BAD_REQUEST,
  NOT_FOUND: ErrorCode.NOT_FOUND,
  FILE_ERROR: ErrorCode.FILE_ERROR,
  EXEC_FAILED: ErrorCode.EXEC_FAILED,
  CONNECTION_REFUSED: ErrorCode.PORT_UNREACHABLE,
  CLOCK_FAILED: ErrorCode.AGENT_ERROR,
  RESTORE_FAILED: ErrorCode.AGENT_ERROR,
  UNCLASSIFIED: ErrorCode.AGENT_ERROR,
};

function agentError(reply: Extract<GuestReply, { type: 'error' }>): CapsuleError {
  return new CapsuleError(AGENT_CODES[reply.code], reply.message);
}

function linkLost(reason: Error): CapsuleError {
  return new CapsuleError(ErrorCode.AGENT_UNREACHABLE, `lost the guest agent link: ${reason.message}`, {
    cause: reason,
  });
}

/** Bytes queued toward the agent past which DATA waits for the socket to drain. */
const WRITE_HIGH_WATER_BYTES = 1024 * 1024;

export class AgentClient {
  private readonly mux: Mux;
  private closed = false;
  /** Why the guest was cut off for breaking the protocol (null: it never did). */
  private violationReason: string | null = null;
  private violationListeners: Array<(reason: string) => void> = [];

  private constructor(private readonly socket: net.Socket) {
    this.mux = new Mux(
      (frame) => socket.write(frame),
      undefined,
      () => this.drained(),
    );
    socket.on('data', (chunk) => {
      try {
        this.mux.feed(chunk);
      } catch (err) {
        // DATA past its credit or a corrupt frame: a guest that does this is cut off, never buffered for
        this.violationReason ??= (err as Error).message;
        socket.destroy();
        for (const listener of this.violationListeners.splice(0)) listener(this.violationReason);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.mux.reset(
        new Error(
          this.violationReason ? `the guest broke the agent protocol: ${this.violationReason}` : 'agent socket closed',
        ),
      );
    });
  }

  /** Called once if the guest breaks the protocol (the link is already cut); the VM's owner fails it. */
  onViolation(listener: (reason: string) => void): void {
    if (this.violationReason) listener(this.violationReason);
    else this.violationListeners.push(listener);
  }

  /** The socket's own backpressure: DATA toward a guest that does not read waits, it never piles up here. */
  private drained(): Promise<void> | undefined {
    if (this.socket.writableLength < WRITE_HIGH_WATER_BYTES || this.socket.destroyed) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  static connect(socketPath: string): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new AgentClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Ping until the agent answers. Pings sent before the agent runs are queued by QEMU and answered late. */
  async waitReady(timeoutMs: number, attemptMs = 500): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline && !this.closed) {
      try {
        await this.ping(Math.min(attemptMs, Math.max(1, deadline - Date.now())));
        return;
      } catch (err) {
        lastError = err;
      }
    }
    throw new CapsuleError(ErrorCode.AGENT_UNREACHABLE, `guest agent did not answer within ${timeoutMs} ms`, {
      cause: lastError,
    });
  }

  async ping(timeoutMs = 5000): Promise<void> {
    await this.call({ type: 'ping' }, 'pong', timeoutMs);
  }

  /** The agent collects its garbage now: the last request before a ready snapshot is saved. */
  async prepareSnapshot(): Promise<void> {
    await this.call({ type: 'prepareSnapshot' }, 'result', 30_000);
  }

  async info(timeoutMs = 5000): Promise<AgentInfo> {
    return (await this.call({ type: 'info' }, 'info', timeoutMs)).info;
  }

  async setClock(epochMs = Date.now(), timeoutMs = 10_000): Promise<void> {
    await this.call({ type: 'setClock', epochMs }, 'result', timeoutMs);
  }

  /**
   * After a resume: the host clock (the guest's stood still while it was suspended) and fresh entropy (the same
   * suspended state can be resumed again when a resume fails late, and must not replay its random numbers).
   */
  async resumeFixups(timeoutMs: number): Promise<void> {
    const request = { type: 'setClock', epochMs: Date.now(), entropyHex: randomBytes(64).toString('hex') } as const;
    await this.call(request, 'result', timeoutMs);
  }

  /**
   * After a snapshot restore: fresh entropy + reseed, the host clock, this clone's hostname and MAC.
   */
  async restoreIdentity(hostname: string, timeoutMs = 30_000): Promise<void> {
    const request = {
      type: 'restore',
      hostname,
      epochMs: Date.now(),
      entropyHex: randomBytes(64).toString('hex'),
      macAddress: guestMacAddress(hostname),
    } as const;
    await this.call(request, 'result', timeoutMs);
  }

  async stat(path: string): Promise<FileStat> {
    return (await this.call({ type: 'fs.stat', path }, 'result')).stat!;
  }

  async list(path: string): Promise<FileStat[]> {
    return (await this.call({ type: 'fs.list', path }, 'result')).entries ?? [];
  }

  async mkdir(path: string): Promise<FileStat> {
    return (await this.call({ type: 'fs.mkdir', path, recursive: true }, 'result')).stat!;
  }

  async remove(path: string, recursive = false): Promise<void> {
    await this.call({ type: 'fs.remove', path, recursive }, 'result');
  }

  /**
   * Stream a file into the guest; it appears atomically (temp file + fsync + rename); `parents` makes missing
   * directories.
   */
  writeFile(
    path: string,
    content: AsyncIterable<Buffer>,
    opts: { mode?: number; parents?: boolean } = {},
  ): Promise<FileStat> {
    const channel = this.open();
    const done = this.awaitReply(channel, 'result');
    channel.sendMessage({ type: 'fs.write', path, mode: opts.mode, parents: opts.parents } satisfies GuestRequestInput);
    channel.pipeFrom(Fd.FILE, content).catch((err) => {
      // the source failed (client went away): the guest drops its temp file
      channel.sendMessage({ type: 'cancel' } satisfies GuestRequestInput);
      channel.abort(new Error(`upload aborted: ${(err as Error).message}`));
    });
    return done.then((reply) => reply.stat!);
  }

  /**
   * Stream a file out of the guest: `result{stat}` first, then the bytes. `onData` may return a promise (backpressure).
   */
  readFile(
    path: string,
    onData: (chunk: Buffer) => void | Promise<unknown>,
    /** Called synchronously before the first byte: the place to write response headers. */
    onStat?: (stat: FileStat) => void,
  ): { stat: Promise<FileStat>; done: Promise<void>; cancel(): void } {
    const channel = this.open();
    let resolveStat!: (stat: FileStat) => void;
    let rejectStat!: (err: Error) => void;
    const stat = new Promise<FileStat>((res, rej) => ((resolveStat = res), (rejectStat = rej)));
    const done = new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        this.mux.release(channel);
        rejectStat(err);
        reject(err);
      };
      channel.events.abort = (reason) => fail(linkLost(reason));
      channel.events.data = (fd, chunk) => (fd === Fd.FILE ? onData(chunk) : undefined);
      channel.events.eof = () => {
        this.mux.release(channel);
        resolve();
      };
      channel.events.message = (raw) => {
        const parsed = GuestReply.safeParse(raw);
        if (!parsed.success) return fail(new CapsuleError(ErrorCode.AGENT_ERROR, 'malformed reply from guest agent'));
        if (parsed.data.type === 'error') fail(agentError(parsed.data));
        else if (parsed.data.type === 'result' && parsed.data.stat) {
          onStat?.(parsed.data.stat);
          resolveStat(parsed.data.stat);
        }
      };
    });
    // a failure rejects both; callers await `stat` first, then `done`
    done.catch(() => undefined);
    stat.catch(() => undefined);
    channel.sendMessage({ type: 'fs.read', path } satisfies GuestRequestInput);
    const cancel = (): void => {
      if (channel.closed) return;
      channel.sendMessage({ type: 'cancel' } satisfies GuestRequestInput);
      channel.abort(new Error('download cancelled'));
      this.mux.release(channel);
    };
    return { stat, done, cancel };
  }

  exec(request: Omit<Extract<GuestRequestInput, { type: 'exec' }>, 'type' | 'stdin'>, io: ExecIo = {}): ExecHandle {
    const channel = this.open();
    let resolvePid!: (pid: number) => void;
    let rejectPid!: (err: Error) => void;
    const pid = new Promise<number>((res, rej) => ((resolvePid = res), (rejectPid = rej)));
    let startTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    const result = new Promise<ExecResult>((resolve, reject) => {
      const fail = (err: Error): void => {
        clearTimeout(startTimer);
        clearTimeout(deadlineTimer);
        this.mux.release(channel);
        rejectPid(err);
        reject(err);
      };
      const startTimeoutMs = io.startTimeoutMs ?? DEFAULT_EXEC_START_TIMEOUT_MS;
      startTimer = setTimeout(
        () =>
          fail(
            new CapsuleError(
              ErrorCode.AGENT_UNREACHABLE,
              `guest agent did not start the command within ${startTimeoutMs} ms`,
            ),
          ),
        startTimeoutMs,
      );
      if (io.deadlineMs !== undefined && !request.background) {
        deadlineTimer = setTimeout(() => {
          channel.sendMessage({ type: 'signal', signal: 'SIGKILL' } satisfies GuestRequestInput);
          fail(
            new CapsuleError(
              ErrorCode.AGENT_UNREACHABLE,
              `the guest did not end the command within the host's deadline of ${io.deadlineMs} ms`,
            ),
          );
        }, io.deadlineMs);
      }
      channel.events.data = (fd, chunk) =>
        fd === Fd.STDOUT ? io.onStdout?.(chunk) : fd === Fd.STDERR ? io.onStderr?.(chunk) : undefined;
      channel.events.abort = (reason) => fail(linkLost(reason));
      channel.events.message = (raw) => {
        const parsed = GuestReply.safeParse(raw);
        if (!parsed.success) return fail(new CapsuleError(ErrorCode.AGENT_ERROR, 'malformed reply from guest agent'));
        const reply = parsed.data;
        if (reply.type === 'started' || reply.type === 'exit') clearTimeout(startTimer);
        if (reply.type === 'started') {
          resolvePid(reply.pid);
          if (request.background) {
            this.mux.release(channel);
            resolve({ exitCode: null, signal: null, timedOut: false });
          }
        } else if (reply.type === 'exit') {
          clearTimeout(deadlineTimer);
          this.mux.release(channel);
          resolvePid(-1);
          resolve({ exitCode: reply.exitCode, signal: reply.signal, timedOut: reply.timedOut });
        } else if (reply.type === 'error') fail(agentError(reply));
      };
    });
    // callers may await only one of the two; neither may surface as an unhandled rejection
    pid.catch(() => undefined);
    result.catch(() => undefined);
    channel.sendMessage({ type: 'exec', ...request, stdin: io.stdin !== undefined } satisfies GuestRequestInput);
    if (io.stdin) channel.pipeFrom(Fd.STDIN, io.stdin).catch(() => undefined);
    return {
      pid,
      result,
      signal: (signal) => channel.sendMessage({ type: 'signal', signal } satisfies GuestRequestInput),
      resize: (rows, cols) => channel.sendMessage({ type: 'resize', rows, cols } satisfies GuestRequestInput),
    };
  }

  /**
   * A TCP connection to 127.0.0.1:port inside the guest, as a stream (the endpoint proxy). Rejects with
   * PORT_UNREACHABLE when nothing accepts there. Destroying the stream closes the guest-side socket.
   */
  openTunnel(port: number, timeoutMs = 15_000): Promise<Duplex> {
    const channel = this.open();
    return new Promise<Duplex>((resolve, reject) => {
      let stream: Duplex | null = null;
      let guestClosed = false;
      const timer = setTimeout(() => {
        channel.sendMessage({ type: 'cancel' } satisfies GuestRequestInput);
        this.mux.release(channel);
        reject(
          new CapsuleError(ErrorCode.AGENT_UNREACHABLE, `guest agent did not open port ${port} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      channel.events.abort = (reason) => {
        clearTimeout(timer);
        if (stream) stream.destroy(linkLost(reason));
        else reject(linkLost(reason));
      };
      channel.events.message = (raw) => {
        const reply = GuestReply.safeParse(raw);
        if (!reply.success) return;
        if (reply.data.type === 'connected') {
          clearTimeout(timer);
          stream = channelDuplex(channel, Fd.TCP);
          stream.once('close', () => {
            if (!guestClosed) channel.sendMessage({ type: 'cancel' } satisfies GuestRequestInput);
            this.mux.release(channel);
          });
          resolve(stream);
        } else if (reply.data.type === 'error') {
          clearTimeout(timer);
          this.mux.release(channel);
          reject(agentError(reply.data));
        } else if (reply.data.type === 'closed' && stream) {
          guestClosed = true;
          const s = stream;
          // the guest sent EOF before `closed`: let the reader drain, then let go
          if (reply.data.error) s.destroy(new Error(`guest connection: ${reply.data.error}`));
          else if (s.readableEnded) s.destroy();
          else s.once('end', () => s.destroy());
        }
      };
      channel.sendMessage({ type: 'tcp.connect', port } satisfies GuestRequestInput);
    });
  }

  private open(): Channel {
    if (this.closed) throw linkLost(new Error('agent socket closed'));
    return this.mux.open();
  }

  private async call<T extends GuestReply['type']>(
    request: GuestRequestInput,
    expect: T,
    timeoutMs = 30_000,
  ): Promise<Extract<GuestReply, { type: T }>> {
    const channel = this.open();
    const reply = this.awaitReply(channel, expect, timeoutMs);
    channel.sendMessage(request);
    return reply;
  }

  /** Wait for the reply `expect` (or an error) on a channel, then release the channel. */
  private awaitReply<T extends GuestReply['type']>(
    channel: Channel,
    expect: T,
    timeoutMs?: number,
  ): Promise<Extract<GuestReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = timeoutMs
        ? setTimeout(() => {
            this.mux.release(channel);
            reject(
              new CapsuleError(
                ErrorCode.AGENT_UNREACHABLE,
                `guest agent did not answer ${expect} within ${timeoutMs} ms`,
              ),
            );
          }, timeoutMs)
        : undefined;
      const settle = (fn: () => void, releaseNow: boolean): void => {
        clearTimeout(timer);
        if (releaseNow) this.mux.release(channel);
        fn();
      };
      channel.events.abort = (reason) => settle(() => reject(linkLost(reason)), true);
      channel.events.message = (raw) => {
        const parsed = GuestReply.safeParse(raw);
        if (!parsed.success)
          return settle(
            () => reject(new CapsuleError(ErrorCode.AGENT_ERROR, 'malformed reply from guest agent')),
            true,
          );
        if (parsed.data.type === 'error') {
          const err = agentError(parsed.data);
          return settle(() => reject(err), true);
        }
        if (parsed.data.type === expect) settle(() => resolve(parsed.data as Extract<GuestReply, { type: T }>), true);
      };
    });
  }
}

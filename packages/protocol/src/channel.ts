// One multiplexed request on the agent link, used by both the host and the guest agent.
// Outgoing data waits for credit; incoming data is granted back once the consumer has taken it,
// so neither side ever holds more than INITIAL_WINDOW_BYTES per stream in memory. The window is
// enforced, not trusted: DATA beyond what was granted is a ProtocolViolation, and the link owner
// disconnects the peer (a hostile guest cannot make the host buffer without bound).
import {
  encodeCredit,
  encodeFrame,
  FrameKind,
  INITIAL_WINDOW_BYTES,
  MAX_PAYLOAD_BYTES,
  ProtocolViolation,
  type Frame,
} from './frame.js';

export type FrameSink = (frame: Buffer) => void;
/** Resolves once the link can take more bytes (undefined: it can now). DATA waits on it; control frames do not. */
export type SinkReady = () => Promise<void> | undefined;

/** A v1 sender could overshoot its credit by less than one frame: that much is tolerated. */
const OVERSHOOT_TOLERANCE_BYTES = MAX_PAYLOAD_BYTES;

export interface ChannelEvents {
  message(msg: unknown): void;
  /** Return a promise to delay the credit grant until the bytes are consumed. */
  data(fd: number, chunk: Buffer): void | Promise<unknown>;
  eof(fd: number): void;
  /** The link went away or the channel was closed locally; pending work must stop. */
  abort(reason: Error): void;
}

export class ChannelClosedError extends Error {
  constructor(reason = 'channel closed') {
    super(reason);
    this.name = 'ChannelClosedError';
  }
}

class Credit {
  private waiters: Array<() => void> = [];
  constructor(public available: number) {}
  add(bytes: number): void {
    this.available += bytes;
    if (this.available > 0) this.release();
  }
  wait(): Promise<void> | undefined {
    if (this.available > 0) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export class Channel {
  private credits = new Map<number, Credit>();
  /** Per fd: bytes the peer may still send before we grant more (negative within the v1 tolerance). */
  private allowance = new Map<number, number>();
  private closedReason: Error | null = null;
  /** True while a sender is blocked waiting for the peer to grant credit. */
  waitingForCredit = false;
  events: ChannelEvents;

  constructor(
    readonly id: number,
    private readonly sink: FrameSink,
    events?: Partial<ChannelEvents>,
    private readonly sinkReady: SinkReady = () => undefined,
  ) {
    this.events = { message() {}, data() {}, eof() {}, abort() {}, ...events };
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  sendMessage(msg: unknown): void {
    if (this.closed) return;
    this.sink(encodeFrame(this.id, FrameKind.MSG, 0, Buffer.from(JSON.stringify(msg))));
  }

  async sendData(fd: number, chunk: Buffer): Promise<void> {
    const credit = this.credit(fd);
    for (let offset = 0; offset < chunk.length; ) {
      // wait until there is credit, re-checking after every wake (another sender may have taken it),
      // and never wait on a channel that is already closed
      for (let wait = credit.wait(); wait && !this.closedReason; wait = credit.wait()) {
        this.waitingForCredit = true;
        await wait;
        this.waitingForCredit = false;
      }
      // and until the link itself has room: a peer that grants credit but never reads its end
      // must not make us buffer without bound
      for (let ready = this.sinkReady(); ready && !this.closedReason; ready = this.sinkReady()) await ready;
      if (this.closedReason) throw new ChannelClosedError(this.closedReason.message);
      if (credit.available <= 0) continue; // another sender took the credit while we waited for the link
      const bytes = Math.min(MAX_PAYLOAD_BYTES, credit.available, chunk.length - offset);
      const slice = chunk.subarray(offset, offset + bytes);
      offset += bytes;
      credit.available -= bytes;
      this.sink(encodeFrame(this.id, FrameKind.DATA, fd, slice));
    }
  }

  /** Stream a source into `fd`, then EOF. Backpressure: the source is not read faster than credit allows. */
  async pipeFrom(fd: number, source: AsyncIterable<Buffer | string>): Promise<void> {
    for await (const chunk of source) {
      await this.sendData(fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    }
    this.sendEof(fd);
  }

  sendEof(fd: number): void {
    if (!this.closed) this.sink(encodeFrame(this.id, FrameKind.EOF, fd));
  }

  /** Called by the link for every frame of this channel. Throws ProtocolViolation for DATA past its credit. */
  deliver(frame: Frame): void {
    if (this.closed) return;
    switch (frame.kind) {
      case FrameKind.MSG: {
        let msg: unknown;
        try {
          msg = JSON.parse(frame.payload.toString('utf8'));
        } catch {
          msg = { type: 'invalid-json' };
        }
        this.events.message(msg);
        return;
      }
      case FrameKind.DATA: {
        const length = frame.payload.length;
        const left = (this.allowance.get(frame.fd) ?? INITIAL_WINDOW_BYTES) - length;
        if (left < -OVERSHOOT_TOLERANCE_BYTES) {
          throw new ProtocolViolation(
            `channel ${this.id} fd ${frame.fd}: ${length} bytes of DATA past the credit granted ` +
              `(${left + length} left)`,
          );
        }
        this.allowance.set(frame.fd, left);
        const pending = this.events.data(frame.fd, frame.payload);
        if (pending)
          pending.then(
            () => this.grant(frame.fd, length),
            () => undefined,
          );
        else this.grant(frame.fd, length);
        return;
      }
      case FrameKind.CREDIT:
        if (frame.payload.length === 4) this.credit(frame.fd).add(frame.payload.readUInt32BE(0));
        return;
      case FrameKind.EOF:
        this.events.eof(frame.fd);
        return;
    }
  }

  /** Local close: no more frames are sent; blocked senders fail. Idempotent. */
  close(reason: Error = new ChannelClosedError()): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const credit of this.credits.values()) credit.release();
  }

  /** The link died: close and tell the owner. */
  abort(reason: Error): void {
    if (this.closed) return;
    this.close(reason);
    this.events.abort(reason);
  }

  private grant(fd: number, bytes: number): void {
    if (this.closed || bytes <= 0) return;
    this.allowance.set(fd, (this.allowance.get(fd) ?? INITIAL_WINDOW_BYTES) + bytes);
    this.sink(encodeCredit(this.id, fd, bytes));
  }

  private credit(fd: number): Credit {
    let credit = this.credits.get(fd);
    if (!credit) {
      credit = new Credit(INITIAL_WINDOW_BYTES);
      this.credits.set(fd, credit);
    }
    return credit;
  }
}

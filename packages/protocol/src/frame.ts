// Guest-agent wire framing over virtio-serial. Any change here requires bumping PROTOCOL_VERSION.
//
// Every frame: 12-byte header + payload.
//   u32 payloadLength | u32 channel | u8 kind | u8 fd | u16 reserved(0)
// A channel is one request (exec, file transfer, ping…) opened by the host; ids are host-chosen.
// Flow control is per (channel, fd), credit based: a sender may have at most the bytes the receiver
// granted in flight, and the receiver grants more only after its consumer has taken the data.
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 12;
export const MAX_PAYLOAD_BYTES = 64 * 1024;
export const INITIAL_WINDOW_BYTES = 256 * 1024;

export const FrameKind = {
  /** JSON control message (schemas in messages.ts). */
  MSG: 0,
  /** Raw bytes of stream `fd`. */
  DATA: 1,
  /** u32 payload: more bytes the sender of this frame will accept on `fd`. */
  CREDIT: 2,
  /** Stream `fd` has ended (no payload). */
  EOF: 3,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Stream ids inside a channel. */
/** Byte streams within a channel: exec stdio, a file's content, a TCP tunnel's bytes. */
export const Fd = { STDIN: 0, STDOUT: 1, STDERR: 2, FILE: 3, TCP: 4 } as const;
export type Fd = (typeof Fd)[keyof typeof Fd];

export interface Frame {
  channel: number;
  kind: FrameKind;
  fd: number;
  payload: Buffer;
}

export function encodeFrame(channel: number, kind: FrameKind, fd: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PAYLOAD_BYTES)
    throw new RangeError(`frame payload ${payload.length} > ${MAX_PAYLOAD_BYTES}`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(channel >>> 0, 4);
  header.writeUInt8(kind, 8);
  header.writeUInt8(fd, 9);
  header.writeUInt16BE(0, 10);
  return payload.length === 0 ? header : Buffer.concat([header, payload]);
}

export function encodeCredit(channel: number, fd: number, bytes: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(bytes, 0);
  return encodeFrame(channel, FrameKind.CREDIT, fd, p);
}

/** A peer sent what the protocol forbids (a corrupt header, DATA past its credit): drop the link. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolViolation';
  }
}

/** Incremental decoder: feed it arbitrary chunks, get whole frames. Throws on a corrupt header. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER_BYTES) break;
      const head = this.peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      const kind = head.readUInt8(8);
      if (length > MAX_PAYLOAD_BYTES || kind > FrameKind.EOF || head.readUInt16BE(10) !== 0) {
        throw new ProtocolViolation(`corrupt frame header (length ${length}, kind ${kind})`);
      }
      if (this.buffered < HEADER_BYTES + length) break;
      const all = this.take(HEADER_BYTES + length);
      frames.push({
        channel: all.readUInt32BE(4),
        kind: kind as FrameKind,
        fd: all.readUInt8(9),
        payload: all.subarray(HEADER_BYTES),
      });
    }
    return frames;
  }

  reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

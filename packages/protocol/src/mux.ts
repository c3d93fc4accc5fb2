// Channel multiplexer over one byte stream (the virtio-serial port). The host opens channels; the
// guest learns of a channel from its first MSG frame. Frames for unknown channels are dropped (a late
// CREDIT or DATA after a channel closed is normal).
import { Channel, type SinkReady } from './channel.js';
import { FrameDecoder, FrameKind } from './frame.js';

export class Mux {
  private readonly channels = new Map<number, Channel>();
  private readonly decoder = new FrameDecoder();
  private nextId = 1;

  constructor(
    private readonly write: (frame: Buffer) => void,
    /** Guest side: called for a MSG on an unknown channel; the handler sets the channel's events. */
    private readonly onIncoming?: (channel: Channel) => void,
    /** DATA waits on this (the link's own backpressure); default: never waits. */
    private readonly sinkReady?: SinkReady,
  ) {}

  /** Feed bytes from the link. Throws if the stream is corrupt or breaks flow control (the caller drops the link). */
  feed(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) {
      let channel = this.channels.get(frame.channel);
      if (!channel) {
        if (frame.kind !== FrameKind.MSG || !this.onIncoming) continue;
        channel = this.register(frame.channel);
        this.onIncoming(channel);
      }
      channel.deliver(frame);
    }
  }

  open(): Channel {
    while (this.channels.has(this.nextId)) this.nextId = (this.nextId % 0xfffffff0) + 1;
    const channel = this.register(this.nextId);
    this.nextId = (this.nextId % 0xfffffff0) + 1;
    return channel;
  }

  release(channel: Channel): void {
    channel.close();
    this.channels.delete(channel.id);
  }

  get openChannels(): number {
    return this.channels.size;
  }

  /** The link was lost: forget partial frames and abort every channel. */
  reset(reason: Error): void {
    this.decoder.reset();
    const channels = [...this.channels.values()];
    this.channels.clear();
    for (const channel of channels) channel.abort(reason);
  }

  private register(id: number): Channel {
    const channel = new Channel(id, this.write, undefined, this.sinkReady);
    this.channels.set(id, channel);
    return channel;
  }
}

// Flow control is enforced, not trusted: a receiver drops a peer that sends past its credit, a sender
// never overshoots what it was granted, and DATA waits while the link itself is full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Channel } from './channel.js';
import {
  encodeCredit,
  encodeFrame,
  Fd,
  FrameKind,
  INITIAL_WINDOW_BYTES,
  MAX_PAYLOAD_BYTES,
  ProtocolViolation,
} from './frame.js';
import { Mux } from './mux.js';

const data = (channel: number, bytes: number): Buffer =>
  encodeFrame(channel, FrameKind.DATA, Fd.STDOUT, Buffer.alloc(bytes));

/** A host mux with one open channel whose consumer never takes anything (no credit is ever granted back). */
function stalledHost(): { mux: Mux; channel: Channel; received: () => number } {
  const mux = new Mux(() => undefined);
  const channel = mux.open();
  let received = 0;
  channel.events.data = (_fd, chunk) => {
    received += chunk.length;
    return new Promise(() => undefined);
  };
  return { mux, channel, received: () => received };
}

test('DATA past the granted credit is a ProtocolViolation, and nothing past it is delivered', () => {
  const { mux, channel, received } = stalledHost();
  for (let sent = 0; sent < INITIAL_WINDOW_BYTES; sent += MAX_PAYLOAD_BYTES)
    mux.feed(data(channel.id, MAX_PAYLOAD_BYTES));
  assert.equal(received(), INITIAL_WINDOW_BYTES);
  // one more frame is within the tolerance for a v1 sender's overshoot; the next is not
  mux.feed(data(channel.id, MAX_PAYLOAD_BYTES));
  assert.throws(() => mux.feed(data(channel.id, 1)), ProtocolViolation);
  assert.equal(received(), INITIAL_WINDOW_BYTES + MAX_PAYLOAD_BYTES);
});

test('credit granted back raises the allowance: a peer that keeps within it is never dropped', async () => {
  const mux = new Mux(() => undefined);
  const channel = mux.open();
  let received = 0;
  channel.events.data = (_fd, chunk) => void (received += chunk.length); // consumed at once: credit granted at once
  for (let i = 0; i < 100; i++) mux.feed(data(channel.id, MAX_PAYLOAD_BYTES));
  assert.equal(received, 100 * MAX_PAYLOAD_BYTES);
});

test('a corrupt header is a ProtocolViolation too', () => {
  const mux = new Mux(() => undefined);
  const bad = Buffer.alloc(12);
  bad.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, 0);
  assert.throws(() => mux.feed(bad), ProtocolViolation);
});

test('a sender never sends past its credit, even a chunk larger than what is left', async () => {
  const frames: Buffer[] = [];
  const channel = new Channel(7, (frame) => frames.push(frame));
  const sending = channel.sendData(Fd.STDIN, Buffer.alloc(INITIAL_WINDOW_BYTES - 100));
  await sending;
  const more = channel.sendData(Fd.STDIN, Buffer.alloc(MAX_PAYLOAD_BYTES));
  await new Promise((resolve) => setImmediate(resolve));
  const sentBytes = (): number =>
    frames.filter((f) => f.readUInt8(8) === FrameKind.DATA).reduce((n, f) => n + f.readUInt32BE(0), 0);
  assert.equal(sentBytes(), INITIAL_WINDOW_BYTES, 'exactly the window, not a whole frame past it');
  channel.deliver({
    channel: 7,
    kind: FrameKind.CREDIT,
    fd: Fd.STDIN,
    payload: encodeCredit(7, Fd.STDIN, MAX_PAYLOAD_BYTES).subarray(12),
  });
  await more;
  assert.equal(sentBytes(), INITIAL_WINDOW_BYTES - 100 + MAX_PAYLOAD_BYTES);
});

test('DATA waits while the link is full and goes once it drains; a close frees the waiter', async () => {
  let full = true;
  let drain!: () => void;
  const frames: Buffer[] = [];
  const channel = new Channel(
    3,
    (frame) => frames.push(frame),
    undefined,
    () => (full ? new Promise<void>((resolve) => (drain = resolve)) : undefined),
  );
  const sending = channel.sendData(Fd.STDIN, Buffer.alloc(1000));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(frames.length, 0);
  full = false;
  drain();
  await sending;
  assert.equal(frames.length, 1);

  full = true;
  const blocked = channel.sendData(Fd.STDIN, Buffer.alloc(10));
  await new Promise((resolve) => setImmediate(resolve));
  channel.close();
  drain();
  await assert.rejects(blocked, /channel closed/);
});

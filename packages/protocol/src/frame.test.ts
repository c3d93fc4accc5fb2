import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeCredit,
  encodeFrame,
  Fd,
  FrameDecoder,
  FrameKind,
  HEADER_BYTES,
  INITIAL_WINDOW_BYTES,
  MAX_PAYLOAD_BYTES,
  type Frame,
} from './frame.js';
import { prng } from '../../../tests/support/prng.js';

const rng = prng;

function bytes(n: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Frames as plain, comparable objects (payload copied out of any shared buffer). */
function plain(frames: Frame[]): Array<{ channel: number; kind: number; fd: number; payload: string }> {
  return frames.map((f) => ({
    channel: f.channel,
    kind: f.kind,
    fd: f.fd,
    payload: Buffer.from(f.payload).toString('hex'),
  }));
}

const SAMPLE: Array<{ channel: number; kind: FrameKind; fd: number; payload: Buffer }> = [
  { channel: 1, kind: FrameKind.MSG, fd: 0, payload: Buffer.from(JSON.stringify({ type: 'ping', n: 1 })) },
  { channel: 2, kind: FrameKind.DATA, fd: Fd.STDOUT, payload: bytes(1000, 1) },
  { channel: 2, kind: FrameKind.CREDIT, fd: Fd.STDIN, payload: Buffer.from([0, 4, 0, 0]) },
  { channel: 0xfffffff0, kind: FrameKind.EOF, fd: Fd.STDERR, payload: Buffer.alloc(0) },
  { channel: 3, kind: FrameKind.DATA, fd: Fd.FILE, payload: bytes(MAX_PAYLOAD_BYTES, 2) },
  { channel: 3, kind: FrameKind.DATA, fd: 255, payload: Buffer.alloc(0) },
  { channel: 4, kind: FrameKind.MSG, fd: 0, payload: Buffer.from('{"type":"héllo ✓"}') },
];
const STREAM = Buffer.concat(SAMPLE.map((f) => encodeFrame(f.channel, f.kind, f.fd, f.payload)));
const EXPECTED = plain(SAMPLE);

test('constants are consistent', () => {
  assert.equal(HEADER_BYTES, 12);
  assert.ok(MAX_PAYLOAD_BYTES <= INITIAL_WINDOW_BYTES);
  assert.deepEqual(Object.values(FrameKind), [0, 1, 2, 3]);
});

test('encode/decode round trip of every FrameKind', () => {
  for (const kind of Object.values(FrameKind)) {
    const payload = kind === FrameKind.EOF ? Buffer.alloc(0) : Buffer.from(`payload of kind ${kind}`);
    const wire = encodeFrame(7, kind, Fd.STDERR, payload);
    assert.equal(wire.length, HEADER_BYTES + payload.length);
    assert.equal(wire.readUInt32BE(0), payload.length);
    assert.equal(wire.readUInt32BE(4), 7);
    assert.equal(wire.readUInt8(8), kind);
    assert.equal(wire.readUInt8(9), Fd.STDERR);
    assert.equal(wire.readUInt16BE(10), 0);
    const frames = new FrameDecoder().push(wire);
    assert.equal(frames.length, 1);
    assert.deepEqual(plain(frames), plain([{ channel: 7, kind, fd: Fd.STDERR, payload }]));
  }
});

test('encodeFrame defaults to an empty payload and keeps the full u32 channel range', () => {
  const wire = encodeFrame(0xffffffff, FrameKind.EOF, Fd.STDOUT);
  assert.equal(wire.length, HEADER_BYTES);
  const [frame] = new FrameDecoder().push(wire);
  assert.equal(frame.channel, 0xffffffff);
  assert.equal(frame.kind, FrameKind.EOF);
  assert.equal(frame.fd, Fd.STDOUT);
  assert.equal(frame.payload.length, 0);
});

test('encodeCredit carries a big-endian u32', () => {
  const [frame] = new FrameDecoder().push(encodeCredit(9, Fd.STDIN, INITIAL_WINDOW_BYTES + 3));
  assert.equal(frame.channel, 9);
  assert.equal(frame.kind, FrameKind.CREDIT);
  assert.equal(frame.fd, Fd.STDIN);
  assert.equal(frame.payload.length, 4);
  assert.equal(frame.payload.readUInt32BE(0), INITIAL_WINDOW_BYTES + 3);
});

test('multiple frames in one chunk decode in order', () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(plain(decoder.push(STREAM)), EXPECTED);
  assert.deepEqual(decoder.push(Buffer.alloc(0)), []);
});

test('feeding one byte at a time yields the same frames', () => {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (let i = 0; i < STREAM.length; i++) frames.push(...plainCopy(decoder.push(STREAM.subarray(i, i + 1))));
  assert.deepEqual(plain(frames), EXPECTED);
});

test('a split at every byte boundary yields the same frames', () => {
  // Small frames only, so the quadratic number of splits stays fast.
  const small = SAMPLE.filter((f) => f.payload.length < 2000);
  const wire = Buffer.concat(small.map((f) => encodeFrame(f.channel, f.kind, f.fd, f.payload)));
  const expected = plain(small);
  for (let cut = 0; cut <= wire.length; cut++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(wire.subarray(0, cut)), ...decoder.push(wire.subarray(cut))];
    assert.deepEqual(plain(frames), expected, `split at ${cut}`);
  }
});

test('random chunkings (including empty chunks) yield the same frames', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const next = rng(seed);
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    let offset = 0;
    while (offset < STREAM.length) {
      // Mix tiny, header-sized and frame-sized chunks; occasionally empty ones.
      const r = next();
      const size = r < 0.1 ? 0 : r < 0.5 ? Math.floor(next() * 20) : Math.floor(next() * 3 * MAX_PAYLOAD_BYTES);
      frames.push(...plainCopy(decoder.push(STREAM.subarray(offset, offset + size))));
      offset += size;
    }
    assert.deepEqual(plain(frames), EXPECTED, `seed ${seed}`);
  }
});

test('a payload larger than MAX_PAYLOAD_BYTES is refused by encodeFrame', () => {
  assert.throws(() => encodeFrame(1, FrameKind.DATA, Fd.STDOUT, Buffer.alloc(MAX_PAYLOAD_BYTES + 1)), RangeError);
  assert.equal(
    encodeFrame(1, FrameKind.DATA, Fd.STDOUT, Buffer.alloc(MAX_PAYLOAD_BYTES)).length,
    HEADER_BYTES + MAX_PAYLOAD_BYTES,
  );
});

function header(length: number, channel: number, kind: number, fd: number, reserved: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(channel, 4);
  h.writeUInt8(kind, 8);
  h.writeUInt8(fd, 9);
  h.writeUInt16BE(reserved, 10);
  return h;
}

test('a corrupt header makes push throw', () => {
  const cases: Array<[string, Buffer]> = [
    ['length > MAX_PAYLOAD_BYTES', header(MAX_PAYLOAD_BYTES + 1, 1, FrameKind.DATA, 1, 0)],
    ['length 0xffffffff', header(0xffffffff, 1, FrameKind.DATA, 1, 0)],
    ['unknown kind', header(0, 1, FrameKind.EOF + 1, 1, 0)],
    ['kind 255', header(0, 1, 255, 1, 0)],
    ['non-zero reserved', header(0, 1, FrameKind.EOF, 1, 1)],
    ['reserved high byte', header(0, 1, FrameKind.EOF, 1, 0x8000)],
  ];
  for (const [name, bad] of cases) {
    // The header alone is enough: a bogus length fails fast instead of buffering up to 4 GiB.
    assert.throws(() => new FrameDecoder().push(bad), /corrupt frame header/, name);
    // Also when the bad header arrives after a good frame and split across pushes.
    const decoder = new FrameDecoder();
    assert.equal(decoder.push(Buffer.concat([encodeFrame(1, FrameKind.EOF, 0), bad.subarray(0, 5)])).length, 1, name);
    assert.throws(() => decoder.push(bad.subarray(5)), /corrupt frame header/, name);
  }
  // A header at the limit is accepted: the decoder just waits for the payload.
  assert.deepEqual(new FrameDecoder().push(header(MAX_PAYLOAD_BYTES, 1, FrameKind.DATA, 1, 0)), []);
});

test('reset() discards a partial frame', () => {
  const decoder = new FrameDecoder();
  const a = encodeFrame(1, FrameKind.DATA, Fd.STDOUT, Buffer.from('first'));
  const b = encodeFrame(2, FrameKind.MSG, 0, Buffer.from('{"x":1}'));
  assert.deepEqual(decoder.push(a.subarray(0, 3)), []); // partial header
  decoder.reset();
  assert.deepEqual(
    plain(decoder.push(b)),
    plain([{ channel: 2, kind: FrameKind.MSG, fd: 0, payload: Buffer.from('{"x":1}') }]),
  );

  assert.deepEqual(decoder.push(a.subarray(0, HEADER_BYTES + 2)), []); // header + part of payload
  decoder.reset();
  assert.deepEqual(
    plain(decoder.push(b)),
    plain([{ channel: 2, kind: FrameKind.MSG, fd: 0, payload: Buffer.from('{"x":1}') }]),
  );
});

test('reset() recovers a decoder after a corrupt header', () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.push(header(0, 1, 200, 0, 0)));
  decoder.reset();
  assert.deepEqual(plain(decoder.push(STREAM)), EXPECTED);
});

function plainCopy(frames: Frame[]): Frame[] {
  return frames.map((f) => ({ ...f, payload: Buffer.from(f.payload) }));
}

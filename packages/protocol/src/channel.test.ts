import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Channel, ChannelClosedError } from './channel.js';
import {
  encodeCredit,
  encodeFrame,
  Fd,
  FrameDecoder,
  FrameKind,
  INITIAL_WINDOW_BYTES,
  MAX_PAYLOAD_BYTES,
} from './frame.js';
import { Mux } from './mux.js';

/** Two muxes back to back; each write is delivered to the other side on a later turn, like a real link. */
function link(onIncoming: (channel: Channel) => void = () => {}) {
  const wire = {
    toGuest: 0,
    toHost: 0,
    frames: [] as Array<{ dir: 'toGuest' | 'toHost'; kind: number; channel: number; fd: number; length: number }>,
  };
  let connected = true;
  const tap = (dir: 'toGuest' | 'toHost', buf: Buffer) => {
    wire[dir] += buf.length;
    wire.frames.push({
      dir,
      channel: buf.readUInt32BE(4),
      kind: buf.readUInt8(8),
      fd: buf.readUInt8(9),
      length: buf.readUInt32BE(0),
    });
  };
  const host: Mux = new Mux((buf) => {
    tap('toGuest', buf);
    setImmediate(() => connected && guest.feed(buf));
  });
  const guest: Mux = new Mux((buf) => {
    tap('toHost', buf);
    setImmediate(() => connected && host.feed(buf));
  }, onIncoming);
  return { host, guest, wire, disconnect: () => (connected = false) };
}

/** Let the event loop run until `cond` holds (fails after `turns` turns). */
async function until(cond: () => boolean, what: string, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function settle(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

function pattern(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A promise with its resolver, to stall a consumer until the test releases it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('a message opened by the host reaches the guest and its reply comes back', async () => {
  const seen: unknown[] = [];
  const { host, guest } = link((channel) => {
    channel.events.message = (msg) => {
      seen.push(msg);
      channel.sendMessage({ type: 'pong', echo: msg });
      void channel.sendData(Fd.STDOUT, Buffer.from('out')).then(() => channel.sendEof(Fd.STDOUT));
    };
  });
  const channel = host.open();
  const replies: unknown[] = [];
  const stdout: Buffer[] = [];
  let eof = -1;
  channel.events = {
    message: (msg) => replies.push(msg),
    data: (fd, chunk) => void (fd === Fd.STDOUT && stdout.push(Buffer.from(chunk))),
    eof: (fd) => (eof = fd),
    abort: () => assert.fail('no abort expected'),
  };
  channel.sendMessage({ type: 'ping', n: 1, text: 'héllo ✓' });
  await until(() => eof !== -1, 'reply');
  assert.deepEqual(seen, [{ type: 'ping', n: 1, text: 'héllo ✓' }]);
  assert.deepEqual(replies, [{ type: 'pong', echo: { type: 'ping', n: 1, text: 'héllo ✓' } }]);
  assert.equal(Buffer.concat(stdout).toString(), 'out');
  assert.equal(eof, Fd.STDOUT);
  assert.equal(host.openChannels, 1);
  assert.equal(guest.openChannels, 1);
  const [guestChannel] = (guest as unknown as { channels: Map<number, Channel> }).channels.values();
  assert.equal(guestChannel.id, channel.id);
});

test('invalid JSON in a MSG frame is delivered as { type: "invalid-json" }', () => {
  const messages: unknown[] = [];
  const mux = new Mux(
    () => {},
    (channel) => (channel.events.message = (m) => messages.push(m)),
  );
  mux.feed(encodeFrame(5, FrameKind.MSG, 0, Buffer.from('{not json')));
  assert.deepEqual(messages, [{ type: 'invalid-json' }]);
});

test(
  'flow control: a stalled consumer never holds more than the window, then everything arrives in ' + 'order',
  async () => {
    const TOTAL = 4 * 1024 * 1024;
    const source = pattern(TOTAL);
    let guestChannel: Channel | undefined;
    let sendDone = false;
    let sendError: unknown;
    const { host, wire } = link((channel) => {
      guestChannel = channel;
      channel.events.message = () => {
        channel.sendData(Fd.STDOUT, source).then(
          () => ((sendDone = true), channel.sendEof(Fd.STDOUT)),
          (err) => (sendError = err),
        );
      };
    });

    const received: Buffer[] = [];
    let delivered = 0; // bytes handed to the consumer
    let consumed = 0; // bytes whose promise resolved (credit granted back)
    let maxOutstanding = 0;
    let stall: ReturnType<typeof gate> | null = gate();
    let eof = false;
    const channel = host.open();
    channel.events.data = (fd, chunk) => {
      assert.equal(fd, Fd.STDOUT);
      assert.ok(chunk.length <= MAX_PAYLOAD_BYTES);
      received.push(Buffer.from(chunk));
      delivered += chunk.length;
      maxOutstanding = Math.max(maxOutstanding, delivered - consumed);
      const done = () => void (consumed += chunk.length);
      // While stalled every chunk waits for the gate; afterwards the consumer is slow but steady.
      if (stall) return stall.promise.then(done);
      return new Promise<void>((resolve) => setImmediate(() => (done(), resolve())));
    };
    channel.events.eof = () => (eof = true);
    channel.sendMessage({ type: 'start' });

    await until(() => guestChannel?.waitingForCredit === true, 'the sender to block on credit');
    await settle(); // give any (wrongly) unbudgeted frame time to arrive
    assert.equal(guestChannel!.waitingForCredit, true);
    assert.equal(sendDone, false);
    assert.ok(delivered > 0);
    assert.ok(delivered <= INITIAL_WINDOW_BYTES + MAX_PAYLOAD_BYTES, `delivered ${delivered} while stalled`);
    assert.ok(wire.toHost <= INITIAL_WINDOW_BYTES + MAX_PAYLOAD_BYTES + 100 * 12, `wire carried ${wire.toHost}`);
    assert.equal(consumed, 0);
    assert.equal(
      wire.frames.filter((f) => f.kind === FrameKind.CREDIT).length,
      0,
      'no credit while the consumer is stalled',
    );

    const stalled = stall!;
    stall = null;
    stalled.open();
    await until(() => eof, 'eof', 100_000);
    assert.equal(sendError, undefined);
    assert.equal(sendDone, true);
    assert.equal(guestChannel!.waitingForCredit, false);
    assert.equal(delivered, TOTAL);
    const all = Buffer.concat(received);
    assert.equal(sha(all), sha(source));
    assert.ok(all.equals(source));
    assert.ok(maxOutstanding <= INITIAL_WINDOW_BYTES + MAX_PAYLOAD_BYTES, `max outstanding ${maxOutstanding}`);
    // Credit granted back equals the bytes consumed.
    await settle();
    assert.equal(consumed, TOTAL);
    const credited = wire.frames.filter((f) => f.dir === 'toGuest' && f.kind === FrameKind.CREDIT).length;
    assert.equal(credited, received.length);
  },
);

test('flow control is per fd: a stalled stdout does not block stderr', async () => {
  let guestChannel: Channel | undefined;
  let stdoutDone = false;
  let stderrDone = false;
  const { host } = link((channel) => {
    guestChannel = channel;
    channel.events.message = () => {
      void channel.sendData(Fd.STDOUT, Buffer.alloc(INITIAL_WINDOW_BYTES + 1)).then(() => (stdoutDone = true));
    };
  });
  const stall = gate();
  let stderrBytes = 0;
  const channel = host.open();
  channel.events.data = (fd, chunk) => {
    if (fd === Fd.STDOUT) return stall.promise;
    stderrBytes += chunk.length;
  };
  channel.sendMessage({ type: 'start' });
  await until(() => guestChannel?.waitingForCredit === true, 'stdout to block');
  await guestChannel!.sendData(Fd.STDERR, Buffer.alloc(100_000)).then(() => (stderrDone = true));
  await until(() => stderrBytes === 100_000, 'stderr');
  assert.equal(stderrDone, true);
  assert.equal(stdoutDone, false);
  stall.open();
  await until(() => stdoutDone, 'stdout to finish');
});

test('pipeFrom reads the source only as fast as credit allows, then sends EOF', async () => {
  const CHUNK = 16 * 1024;
  const CHUNKS = 64; // 1 MiB, four windows
  let pulled = 0;
  async function* source(): AsyncGenerator<Buffer | string> {
    yield 'hello ';
    for (let i = 0; i < CHUNKS; i++) {
      pulled++;
      yield Buffer.alloc(CHUNK, i);
    }
    yield 'bye';
  }
  let guestChannel: Channel | undefined;
  let piped: Promise<void> | undefined;
  const { host } = link((channel) => {
    guestChannel = channel;
    channel.events.message = () => {
      piped = channel.pipeFrom(Fd.STDOUT, source());
    };
  });
  const order: string[] = [];
  const received: Buffer[] = [];
  let stall: ReturnType<typeof gate> | null = gate();
  const channel = host.open();
  channel.events.data = (_fd, chunk) => {
    order.push('data');
    received.push(Buffer.from(chunk));
    if (stall) return stall.promise;
  };
  channel.events.eof = (fd) => order.push(`eof ${fd}`);
  channel.sendMessage({ type: 'start' });

  await until(() => guestChannel?.waitingForCredit === true, 'pipeFrom to block');
  await settle();
  assert.ok(pulled * CHUNK <= INITIAL_WINDOW_BYTES + CHUNK, `pulled ${pulled} chunks while the consumer was stalled`);
  assert.ok(!order.includes(`eof ${Fd.STDOUT}`));

  stall!.open();
  stall = null;
  await until(() => order.at(-1) === `eof ${Fd.STDOUT}`, 'eof');
  await piped;
  assert.equal(pulled, CHUNKS);
  assert.equal(order.filter((o) => o.startsWith('eof')).length, 1);
  const expected = Buffer.concat([
    Buffer.from('hello '),
    ...Array.from({ length: CHUNKS }, (_, i) => Buffer.alloc(CHUNK, i)),
    Buffer.from('bye'),
  ]);
  assert.ok(Buffer.concat(received).equals(expected));
});

test('pipeFrom of an empty source sends only EOF', async () => {
  const frames: Array<{ kind: number; fd: number }> = [];
  const decoder = new FrameDecoder();
  const channel = new Channel(3, (buf) => frames.push(...decoder.push(buf)));
  await channel.pipeFrom(Fd.FILE, (async function* () {})());
  assert.deepEqual(
    frames.map((f) => ({ kind: f.kind, fd: f.fd })),
    [{ kind: FrameKind.EOF, fd: Fd.FILE }],
  );
});

test('Mux.reset() aborts every channel and a sender blocked on credit rejects with ChannelClosedError', async () => {
  const { host, guest, disconnect } = link((channel) => {
    // The guest never consumes stdin: the host sender runs out of credit.
    channel.events.data = () => new Promise(() => {});
  });
  const aborted: Array<[number, Error]> = [];
  const channels = [host.open(), host.open(), host.open()];
  for (const c of channels) c.events.abort = (reason) => aborted.push([c.id, reason]);
  const sender = channels[0];
  sender.sendMessage({ type: 'start' });
  const sending = sender.sendData(Fd.STDIN, Buffer.alloc(INITIAL_WINDOW_BYTES * 2));
  let settled = false;
  sending.then(
    () => (settled = true),
    () => (settled = true),
  );
  await until(() => sender.waitingForCredit, 'the sender to block');
  await settle();
  assert.equal(settled, false);

  disconnect();
  const reason = new Error('link lost');
  host.reset(reason);
  await assert.rejects(sending, (err: Error) => {
    assert.ok(err instanceof ChannelClosedError);
    assert.equal(err.name, 'ChannelClosedError');
    assert.equal(err.message, 'link lost');
    return true;
  });
  assert.equal(sender.waitingForCredit, false);
  assert.deepEqual(
    aborted.map(([id, r]) => [id, r]),
    channels.map((c) => [c.id, reason]),
  );
  assert.equal(host.openChannels, 0);
  for (const c of channels) assert.equal(c.closed, true);

  // A second reset does not abort the (already forgotten) channels again.
  host.reset(new Error('again'));
  assert.equal(aborted.length, 3);
  guest.reset(new Error('guest side'));
  assert.equal(guest.openChannels, 0);
});

test('sendData on a channel closed while its credit is used up rejects instead of hanging', async () => {
  const channel = new Channel(1, () => {});
  await channel.sendData(Fd.STDOUT, Buffer.alloc(INITIAL_WINDOW_BYTES)); // credit now 0
  channel.abort(new Error('link lost'));
  const outcome = await Promise.race([
    channel.sendData(Fd.STDOUT, Buffer.from('x')).then(
      () => 'resolved',
      (err) => (err instanceof ChannelClosedError ? 'rejected' : String(err)),
    ),
    settle(20).then(() => 'still pending'),
  ]);
  assert.equal(outcome, 'rejected');
});

test('Mux.reset() discards a partial frame from the lost link', () => {
  const messages: unknown[] = [];
  const mux = new Mux(
    () => {},
    (channel) => (channel.events.message = (m) => messages.push(m)),
  );
  const frame = encodeFrame(1, FrameKind.MSG, 0, Buffer.from('{"a":1}'));
  mux.feed(frame.subarray(0, 7));
  mux.reset(new Error('lost'));
  mux.feed(encodeFrame(2, FrameKind.MSG, 0, Buffer.from('{"b":2}')));
  assert.deepEqual(messages, [{ b: 2 }]);
});

test('a closed channel writes nothing and ignores incoming frames', async () => {
  const writes: Buffer[] = [];
  const mux = new Mux((buf) => writes.push(buf));
  const channel = mux.open();
  const events: string[] = [];
  channel.events = {
    message: () => events.push('message'),
    data: () => void events.push('data'),
    eof: () => events.push('eof'),
    abort: () => events.push('abort'),
  };
  mux.release(channel);
  assert.equal(channel.closed, true);
  assert.equal(mux.openChannels, 0);
  channel.sendMessage({ type: 'late' });
  channel.sendEof(Fd.STDIN);
  await assert.rejects(channel.sendData(Fd.STDIN, Buffer.from('late')), ChannelClosedError);
  channel.deliver({ channel: channel.id, kind: FrameKind.MSG, fd: 0, payload: Buffer.from('{}') });
  channel.deliver({ channel: channel.id, kind: FrameKind.DATA, fd: 1, payload: Buffer.from('x') });
  // Late frames for the released id reach nobody.
  mux.feed(encodeFrame(channel.id, FrameKind.DATA, Fd.STDOUT, Buffer.from('late')));
  mux.feed(encodeFrame(channel.id, FrameKind.MSG, 0, Buffer.from('{}')));
  assert.equal(writes.length, 0);
  assert.deepEqual(events, []);
  // release() is a local close, not an abort; abort() after close is a no-op.
  channel.abort(new Error('x'));
  assert.deepEqual(events, []);
});

test('frames for an unknown channel that are not MSG are ignored', () => {
  const writes: Buffer[] = [];
  const incoming: Channel[] = [];
  const messages: unknown[] = [];
  const guest = new Mux(
    (buf) => writes.push(buf),
    (channel) => {
      incoming.push(channel);
      channel.events.message = (m) => messages.push(m);
    },
  );
  guest.feed(
    Buffer.concat([
      encodeFrame(42, FrameKind.DATA, Fd.STDIN, Buffer.from('stray')),
      encodeCredit(42, Fd.STDOUT, 1000),
      encodeFrame(42, FrameKind.EOF, Fd.STDIN),
    ]),
  );
  assert.equal(incoming.length, 0);
  assert.equal(guest.openChannels, 0);
  assert.equal(writes.length, 0, 'no credit is granted for stray data');

  guest.feed(encodeFrame(42, FrameKind.MSG, 0, Buffer.from('{"type":"exec"}')));
  assert.equal(incoming.length, 1);
  assert.equal(incoming[0].id, 42);
  assert.deepEqual(messages, [{ type: 'exec' }]);
  assert.equal(guest.openChannels, 1);

  // The host side (no onIncoming) ignores even MSG frames for unknown channels.
  const host = new Mux((buf) => writes.push(buf));
  host.feed(encodeFrame(7, FrameKind.MSG, 0, Buffer.from('{}')));
  host.feed(encodeFrame(7, FrameKind.DATA, Fd.STDOUT, Buffer.from('x')));
  assert.equal(host.openChannels, 0);
  assert.equal(writes.length, 0);
});

test('a corrupt stream makes feed throw', () => {
  const mux = new Mux(() => {});
  const bad = Buffer.alloc(12);
  bad.writeUInt8(9, 8);
  assert.throws(() => mux.feed(bad), /corrupt frame header/);
});

test('Mux.open() ids are unique and skip ids in use', () => {
  const mux = new Mux(() => {});
  const ids = Array.from({ length: 1000 }, () => mux.open().id);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids.every((id) => id >= 1 && id <= 0xfffffff0));
  assert.equal(mux.openChannels, 1000);

  // Ids the peer already uses (learned from incoming MSG frames) are skipped.
  const guest = new Mux(
    () => {},
    () => {},
  );
  for (const id of [1, 2, 4]) guest.feed(encodeFrame(id, FrameKind.MSG, 0, Buffer.from('{}')));
  assert.equal(guest.open().id, 3);
  assert.equal(guest.open().id, 5);

  // On wrap-around the counter restarts at 1 and skips ids still open.
  const wrap = new Mux(() => {});
  const first = wrap.open(); // 1
  const second = wrap.open(); // 2
  wrap.release(first);
  (wrap as unknown as { nextId: number }).nextId = 0xfffffff0;
  assert.equal(wrap.open().id, 0xfffffff0);
  assert.equal(wrap.open().id, 1, 'released id 1 is reused after wrap-around');
  assert.equal(second.id, 2);
  assert.equal(wrap.open().id, 3, 'id 2 is still open and skipped');
  assert.equal(wrap.openChannels, 4);
});

test('Channel defaults: missing events are no-ops and credit starts at the initial window', async () => {
  const frames: number[] = [];
  const decoder = new FrameDecoder();
  const channel = new Channel(1, (buf) => frames.push(...decoder.push(buf).map((f) => f.payload.length)));
  // Exactly one window goes out without blocking.
  await channel.sendData(Fd.STDIN, Buffer.alloc(INITIAL_WINDOW_BYTES));
  assert.equal(
    frames.reduce((a, b) => a + b, 0),
    INITIAL_WINDOW_BYTES,
  );
  assert.ok(frames.every((n) => n <= MAX_PAYLOAD_BYTES));
  let done = false;
  const more = channel.sendData(Fd.STDIN, Buffer.from('x')).then(() => (done = true));
  await settle(5);
  assert.equal(done, false);
  assert.equal(channel.waitingForCredit, true);
  channel.deliver({ channel: 1, kind: FrameKind.CREDIT, fd: Fd.STDIN, payload: Buffer.from([0, 0, 0, 1]) });
  await more;
  assert.equal(channel.waitingForCredit, false);
  // A malformed CREDIT payload is ignored; default handlers swallow everything.
  channel.deliver({ channel: 1, kind: FrameKind.CREDIT, fd: Fd.STDIN, payload: Buffer.from([1]) });
  channel.deliver({ channel: 1, kind: FrameKind.MSG, fd: 0, payload: Buffer.from('{}') });
  channel.deliver({ channel: 1, kind: FrameKind.EOF, fd: 0, payload: Buffer.alloc(0) });
  channel.abort(new Error('bye'));
  assert.equal(channel.closed, true);
});

test('a consumer promise that rejects grants no credit', async () => {
  const writes: Buffer[] = [];
  const channel = new Channel(1, (buf) => writes.push(buf), {
    data: () => Promise.reject(new Error('consumer failed')),
  });
  channel.deliver({ channel: 1, kind: FrameKind.DATA, fd: Fd.STDIN, payload: Buffer.from('abc') });
  await settle(5);
  assert.equal(writes.length, 0);
  const ok = new Channel(2, (buf) => writes.push(buf));
  ok.deliver({ channel: 2, kind: FrameKind.DATA, fd: Fd.STDIN, payload: Buffer.from('abc') });
  assert.equal(writes.length, 1);
  const [credit] = new FrameDecoder().push(writes[0]);
  assert.equal(credit.kind, FrameKind.CREDIT);
  assert.equal(credit.payload.readUInt32BE(0), 3);
});

// A hostile guest agent on a real unix socket, speaking the real framing: the host's memory stays
// bounded whether the guest floods past its credit or grants credit and never reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  encodeCredit,
  encodeFrame,
  ErrorCode,
  Fd,
  FrameDecoder,
  FrameKind,
  MAX_PAYLOAD_BYTES,
  type Frame,
} from '@capsule/protocol';
import { AgentClient } from './agent-client.js';

const MIB = 1024 * 1024;

/** A unix socket "agent" that hands the first host frame of each channel to `onFrame`. */
async function hostileAgent(
  onFrame: (socket: net.Socket, frame: Frame) => void,
): Promise<{ socketPath: string; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-hostile-'));
  const socketPath = path.join(dir, 'agent.sock');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) onFrame(socket, frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const reply = (channel: number, msg: unknown): Buffer =>
  encodeFrame(channel, FrameKind.MSG, 0, Buffer.from(JSON.stringify(msg)));

test('an agent flooding stdout past its credit is cut off, and the host buffers at most the window', async () => {
  const chunk = Buffer.alloc(MAX_PAYLOAD_BYTES, 0x41);
  let sentBytes = 0;
  const agent = await hostileAgent((socket, frame) => {
    if (frame.kind !== FrameKind.MSG) return;
    socket.write(reply(frame.channel, { type: 'started', pid: 42 }));
    const data = encodeFrame(frame.channel, FrameKind.DATA, Fd.STDOUT, chunk);
    // 256 MiB, as fast as the socket takes it, ignoring every credit rule
    const flood = (): void => {
      while (sentBytes < 256 * MIB && !socket.destroyed) {
        sentBytes += chunk.length;
        if (!socket.write(data)) return void socket.once('drain', flood);
      }
    };
    flood();
  });
  const client = await AgentClient.connect(agent.socketPath);
  try {
    const violation = new Promise<string>((resolve) => client.onViolation(resolve));
    const before = process.memoryUsage().arrayBuffers;
    let delivered = 0;
    // a consumer that never takes its bytes: no credit is ever granted back
    const exec = client.exec(
      { command: ['yes'] },
      { onStdout: (c) => ((delivered += c.length), new Promise(() => undefined)) },
    );
    assert.match(await violation, /past the credit granted/);
    await assert.rejects(exec.result, /broke the agent protocol/);
    assert.ok(client.isClosed);
    assert.ok(delivered <= 256 * 1024 + MAX_PAYLOAD_BYTES, `delivered ${delivered} bytes past a 256 KiB window`);
    const grownMib = (process.memoryUsage().arrayBuffers - before) / MIB;
    assert.ok(grownMib < 32, `host buffers grew by ${grownMib.toFixed(1)} MiB`);
    assert.ok(sentBytes < 256 * MIB, 'the host hung up long before the flood ended');
  } finally {
    client.close();
    agent.close();
  }
});

test('an agent that grants unlimited credit and never reads gets no more than the socket high-water mark', async () => {
  let execChannel = -1;
  const agent = await hostileAgent((socket, frame) => {
    if (frame.kind !== FrameKind.MSG || execChannel !== -1) return;
    execChannel = frame.channel;
    socket.write(reply(frame.channel, { type: 'started', pid: 42 }));
    // "send me everything"
    for (let i = 0; i < 64; i++) socket.write(encodeCredit(frame.channel, Fd.STDIN, 0x7fffffff));
    socket.pause(); // …and never read another byte
  });
  const client = await AgentClient.connect(agent.socketPath);
  try {
    let pulledBytes = 0;
    async function* stdin(): AsyncIterable<Buffer> {
      for (let i = 0; i < 1024; i++) {
        pulledBytes += MIB;
        yield Buffer.alloc(MIB);
      }
    }
    client.exec({ command: ['cat'] }, { stdin: stdin() });
    let last = -1;
    // wait until the host stops pulling stdin (blocked on the socket), then check how far it got
    for (let i = 0; i < 200 && pulledBytes !== last; i++) {
      last = pulledBytes;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(pulledBytes, last, 'the host kept pulling stdin into a socket nobody reads');
    assert.ok(pulledBytes <= 16 * MIB, `the host pulled ${pulledBytes / MIB} MiB toward an agent that reads nothing`);
  } finally {
    client.close();
    agent.close();
  }
});

test('an exec the guest never ends fails at the host deadline, and the guest is told to kill it', async () => {
  const seen: unknown[] = [];
  const agent = await hostileAgent((socket, frame) => {
    if (frame.kind !== FrameKind.MSG) return;
    const msg = JSON.parse(frame.payload.toString('utf8')) as { type: string };
    seen.push(msg);
    if (msg.type === 'exec') socket.write(reply(frame.channel, { type: 'started', pid: 7 })); // and never an exit
  });
  const client = await AgentClient.connect(agent.socketPath);
  try {
    const started = Date.now();
    const exec = client.exec({ command: ['sleep', 'forever'], timeoutMs: 100 }, { deadlineMs: 300 });
    await assert.rejects(exec.result, /did not end the command within the host's deadline of 300 ms/);
    assert.ok(Date.now() - started < 5000);
    for (let i = 0; i < 50 && !seen.some((m) => (m as { type: string }).type === 'signal'); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      seen.some((m) => JSON.stringify(m) === JSON.stringify({ type: 'signal', signal: 'SIGKILL' })),
      'SIGKILL sent',
    );
  } finally {
    client.close();
    agent.close();
  }
});

test("an agent's error codes map to API codes; a code the host does not know is AGENT_ERROR, not a crash", async () => {
  const codes = ['CONNECTION_REFUSED', 'NOT_FOUND', 'NO_SUCH_CODE_YET'];
  let n = 0;
  const agent = await hostileAgent((socket, frame) => {
    if (frame.kind === FrameKind.MSG)
      socket.write(reply(frame.channel, { type: 'error', code: codes[n++], message: 'said the guest' }));
  });
  const client = await AgentClient.connect(agent.socketPath);
  try {
    await assert.rejects(client.openTunnel(8080), { code: ErrorCode.PORT_UNREACHABLE, message: 'said the guest' });
    await assert.rejects(client.stat('/nope'), { code: ErrorCode.NOT_FOUND });
    await assert.rejects(client.stat('/odd'), { code: ErrorCode.AGENT_ERROR, message: 'said the guest' });
    assert.equal(client.isClosed, false); // an unknown code is no protocol violation
  } finally {
    client.close();
    agent.close();
  }
});

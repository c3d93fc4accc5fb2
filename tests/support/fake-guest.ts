// A guest agent without a guest: the real agent protocol (frames, channels, credit) on a unix socket,
// answering ping and info, and bridging tcp.connect to the host's loopback with the real agent's tunnel
// code, so an app's lifecycle hooks are an HTTP server the test runs. A real AgentClient connects to it.
// Of exec it runs only `true` (the warm pool's first command): no other command, no files, and never anything
// that would touch the host (clock, hostname).
import fs from 'node:fs';
import net from 'node:net';
import { type Channel, type GuestReply, GuestRequest, Mux, PROTOCOL_VERSION } from '@capsule/protocol';
import { startTunnel } from '@capsule/guest-agent';

export interface FakeGuest {
  /** Cut every connection and stop listening (the VM is gone). */
  close(): void;
}

function answer(channel: Channel, mux: Mux, message: GuestReply): void {
  channel.sendMessage(message);
  mux.release(channel);
}

function dispatch(channel: Channel, mux: Mux, hostname: string): void {
  channel.events.message = (raw) => {
    const parsed = GuestRequest.safeParse(raw);
    const request = parsed.success ? parsed.data : null;
    if (request?.type === 'ping') return answer(channel, mux, { type: 'pong', protocolVersion: PROTOCOL_VERSION });
    if (request?.type === 'exec' && [request.command].flat().join(' ') === 'true')
      return answer(channel, mux, { type: 'exit', exitCode: 0, signal: null, timedOut: false });
    if (request?.type === 'setClock') return answer(channel, mux, { type: 'result' }); // the host's own clock
    if (request?.type === 'tcp.connect') return startTunnel(channel, request.port, () => mux.release(channel));
    if (request?.type === 'info')
      return answer(channel, mux, {
        type: 'info',
        info: {
          protocolVersion: PROTOCOL_VERSION,
          agentVersion: 'fake',
          kernelRelease: 'fake',
          nodeVersion: process.version,
          hostname,
          uptimeMs: 0,
          memTotalBytes: 0,
          memFreeBytes: 0,
          loadAvg: [0, 0, 0],
          bootedAt: new Date().toISOString(),
        },
      });
    answer(channel, mux, {
      type: 'error',
      code: 'BAD_REQUEST',
      message: `the fake guest serves ping, info, setClock, tcp.connect and exec of true, not ${request?.type ?? 'it'}`,
    });
  };
}

/** Serve the agent protocol at `socketPath` (as QEMU's virtio-serial socket would carry it). */
export async function startFakeGuest(socketPath: string, hostname: string): Promise<FakeGuest> {
  fs.rmSync(socketPath, { force: true });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const mux = new Mux(
      (frame) => socket.write(frame),
      (channel) => dispatch(channel, mux, hostname),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        mux.feed(chunk);
      } catch (err) {
        mux.reset(err as Error);
        socket.destroy();
      }
    });
    socket.on('close', () => mux.reset(new Error('host disconnected')));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      fs.rmSync(socketPath, { force: true });
    },
  };
}

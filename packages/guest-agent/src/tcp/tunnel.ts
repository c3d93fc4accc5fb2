// tcp.connect: a connection to 127.0.0.1:port in the guest, bridged to the channel (the host's
// endpoint proxy is on the other end). Both directions stream with the channel's flow control; the
// channel ends with `closed` once the guest-side socket is gone, or when the host sends `cancel`.
import net from 'node:net';
import { Fd, type Channel } from '@capsule/protocol';
import { channelDuplex } from '@capsule/protocol/node';
import { reply, replyError } from '../reply.js';

const CONNECT_TIMEOUT_MS = 10_000;

export function startTunnel(channel: Channel, port: number, done: () => void): void {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let connected = false;
  let finished = false;
  const finish = (error?: string): void => {
    if (finished) return;
    finished = true;
    socket.destroy();
    if (connected) reply(channel, { type: 'closed', ...(error ? { error } : {}) });
    done();
  };
  socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
    if (connected) return;
    replyError(
      channel,
      'CONNECTION_REFUSED',
      `nothing accepted a connection on guest port ${port} within ${CONNECT_TIMEOUT_MS} ms`,
    );
    finish();
  });
  socket.once('error', (err: NodeJS.ErrnoException) => {
    if (!connected) {
      replyError(channel, 'CONNECTION_REFUSED', `guest port ${port}: ${err.code ?? err.message}`);
      return finish();
    }
    finish(err.code ?? err.message);
  });
  channel.events.message = (raw) => {
    if ((raw as { type?: string })?.type === 'cancel') finish();
  };
  channel.events.abort = () => finish();
  socket.once('connect', () => {
    connected = true;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    reply(channel, { type: 'connected' });
    const stream = channelDuplex(channel, Fd.TCP);
    stream.on('error', () => finish());
    socket.pipe(stream);
    stream.pipe(socket);
    // the app's last bytes may still be waiting for credit: end only once they are all sent
    socket.once('close', () => (stream.writableFinished ? finish() : stream.once('finish', () => finish())));
  });
}

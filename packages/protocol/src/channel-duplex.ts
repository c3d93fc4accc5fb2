// A channel's byte stream on one fd as a Node Duplex: writes become DATA frames (waiting for credit),
// incoming DATA is pushed to readers (credit granted back only once they take it), EOF both ways is
// a half-close. Used on both ends of a TCP tunnel into the guest. Node-only (not for browsers).
import { Duplex } from 'node:stream';
import type { Channel } from './channel.js';

export function channelDuplex(channel: Channel, fd: number): Duplex {
  let wakeReader: (() => void) | null = null;
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      const wake = wakeReader;
      wakeReader = null;
      wake?.();
    },
    write(chunk: Buffer, _encoding, callback) {
      channel.sendData(fd, chunk).then(() => callback(), callback);
    },
    final(callback) {
      channel.sendEof(fd);
      callback();
    },
  });
  const events = channel.events;
  const previousData = events.data;
  const previousEof = events.eof;
  events.data = (dataFd, chunk) => {
    if (dataFd !== fd) return previousData(dataFd, chunk);
    // hold the credit grant until the reader wants more: the peer cannot outrun our consumer
    if (duplex.push(chunk)) return undefined;
    return new Promise<void>((resolve) => (wakeReader = resolve));
  };
  events.eof = (eofFd) => {
    if (eofFd !== fd) return previousEof(eofFd);
    duplex.push(null);
  };
  return duplex;
}

// The device-state stream into QEMU's incoming socket: a peer that takes part of it and resets the
// connection (QEMU rejecting a state) is an error value, never an uncaught exception that exits the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { streamFileToSocket } from './migration.js';

/**
 * A unix server that takes up to `bytes` of what arrives, then closes with the rest unread: the writer gets a reset.
 */
async function resettingPeer(dir: string, bytes: number): Promise<{ socketPath: string; server: net.Server }> {
  const socketPath = path.join(dir, 'incoming.sock');
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => undefined);
    // let the writer finish into the kernel's buffers first, as QEMU does before it rejects a state
    setTimeout(() => {
      socket.read(bytes);
      socket.destroy();
    }, 100);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { socketPath, server };
}

for (const sizeBytes of [48 * 1024, 16 * 1024 * 1024]) {
  test(
    `a ${sizeBytes >> 10} KiB state reset by QEMU after 1,000 bytes is an error value, not an uncaught ` + `exception`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-migration-'));
      const uncaught: Error[] = [];
      const onUncaught = (err: Error): void => void uncaught.push(err);
      process.on('uncaughtException', onUncaught);
      const { socketPath, server } = await resettingPeer(dir, 1000);
      try {
        const file = path.join(dir, 'state');
        fs.writeFileSync(file, Buffer.alloc(sizeBytes, 1));
        const outcome = await streamFileToSocket(file, socketPath);
        assert.ok(outcome === null || outcome instanceof Error);
        await sleep(300); // the reset lands after the pipeline has let go of the socket
        assert.deepEqual(
          uncaught.map((e) => e.message),
          [],
        );
      } finally {
        process.off('uncaughtException', onUncaught);
        server.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

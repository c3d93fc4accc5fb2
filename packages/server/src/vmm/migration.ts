// Device-state save/load through QMP migration over a unix socket the host serves. An `exec:` URI
// would need QEMU to spawn a shell, which `-sandbox spawn=deny` kills (SIGSYS); fd passing needs an
// addon. With x-ignore-shared the guest RAM (already in its memory file) is not in the stream.
import fs from 'node:fs';
import net from 'node:net';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QmpClient } from './qmp.js';
import { fsyncPath } from '../durable.js';

const POLL_MS = 5;
const UNLIMITED_BYTES_PER_SECOND = 2 ** 53 - 1;

async function waitForMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await qmp.execute('query-migrate');
    if (status.status === 'completed') return;
    if (status.status === 'failed' || status.status === 'cancelled') {
      throw new Error(`${what} ${status.status}${status['error-desc'] ? `: ${status['error-desc']}` : ''}`);
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not complete within ${timeoutMs} ms (status ${status.status ?? 'none'})`);
    await sleep(POLL_MS);
  }
}

/**
 * Save device state of a *stopped* VM to `file` (fsynced, then renamed into place by the caller).
 * `socketPath` goes in the VM's private directory; it is removed afterwards.
 */
export async function saveDeviceState(
  qmp: QmpClient,
  socketPath: string,
  file: string,
  opts: { ignoreShared: boolean; timeoutMs: number; filter?: Transform },
): Promise<void> {
  const server = net.createServer();
  // QEMU may connect, write and report "completed" before Node has seen the connection: wait for it
  const written = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket) => {
      socket.on('error', () => undefined); // a reset after the pipeline is done with it must not be uncaught
      const out = fs.createWriteStream(file, { flags: 'w', mode: 0o600 });
      (opts.filter ? pipeline(socket, opts.filter, out) : pipeline(socket, out)).then(resolve, reject);
    });
  });
  written.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  try {
    // QEMU (possibly an unprivileged user) must be able to connect; the VM directory (0700) guards it
    fs.chmodSync(socketPath, 0o666);
    await qmp.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'x-ignore-shared', state: opts.ignoreShared }],
    });
    // the default cap (128 MiB/s) throttles a live migration; a paused VM's save should run at disk speed
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': UNLIMITED_BYTES_PER_SECOND });
    await qmp.execute('migrate', { uri: `unix:${socketPath}` });
    await waitForMigration(qmp, opts.timeoutMs, 'saving device state').catch(async (err: Error) => {
      // our end may have broken the stream (a filter that rejects it): that is the cause to report
      throw (
        (await Promise.race([
          written.then(
            () => null,
            (cause: Error) => cause,
          ),
          sleep(1000).then(() => null),
        ])) ?? err
      );
    });
    await Promise.race([
      written,
      sleep(10_000).then(() => Promise.reject(new Error('QEMU never delivered the state stream'))),
    ]);
    fsyncPath(file);
  } finally {
    server.close();
    fs.rmSync(socketPath, { force: true });
  }
}

/**
 * Load device state into a VM started with `-incoming defer`; the caller then sends `cont`.
 * QEMU's migration status is the truth, not our socket: QEMU may read the last byte and close its end
 * before our write side has finished, which Node reports as "Premature close" on a load that succeeded.
 */
export async function loadDeviceState(
  qmp: QmpClient,
  socketPath: string,
  file: string,
  opts: { ignoreShared: boolean; timeoutMs: number },
): Promise<void> {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'x-ignore-shared', state: opts.ignoreShared }],
  });
  await qmp.execute('migrate-incoming', { uri: `unix:${socketPath}` });
  const streamError = streamFileToSocket(file, socketPath);
  const migrated = waitForMigration(qmp, opts.timeoutMs, 'loading device state');
  migrated.catch(() => undefined);
  const first = await Promise.race([migrated.then(() => null), streamError]);
  if (first) {
    // the stream broke: QEMU may still have had all it needed, so let its status decide
    const outcome = await Promise.race([
      migrated.then(
        () => null,
        (err: Error) => err,
      ),
      sleep(STREAM_BREAK_GRACE_MS).then(() => first),
    ]);
    if (outcome) throw outcome;
  }
  await migrated;
}

const STREAM_BREAK_GRACE_MS = 3000;

/**
 * Write a file into a unix socket; resolves with the error that broke the stream, or null. QEMU may
 * reset its end (a load it gave up on) after the pipeline is done with the socket, when pipeline()
 * has dropped its listeners: the socket keeps one of its own, so that reset is never an uncaught exception.
 */
export function streamFileToSocket(file: string, socketPath: string): Promise<Error | null> {
  const socket = net.connect(socketPath).on('error', () => undefined);
  return pipeline(fs.createReadStream(file), socket).then(
    () => null,
    (err: Error) => err,
  );
}

// Raw floors for the benchmark, run with the same QEMU flags, kernel and initramfs as a real MicroVM:
// a busybox /floor-init that prints one line as soon as it runs (boot floor) and then echoes bytes
// on the same virtio-serial port the agent uses (channel floor).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newcArchive, S_IFREG, qemuArgs, vmPaths, type MachineSpec } from '@capsule/server/internals';

const FLOOR_INIT = `#!/bin/busybox sh
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox echo CAPSULE-FLOOR-READY > /dev/ttyS0
/bin/busybox mkdir -p /proc /sys
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys
while read -r m; do insmod /modules/$m; done < /modules/order
port=
while [ -z "$port" ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat $p/name 2>/dev/null)" = org.capsule.agent ] && port=/dev/$(basename $p)
  done
  [ -n "$port" ] && [ -e "$port" ] || { port=; usleep 10000; }
done
echo CAPSULE-ECHO-READY > /dev/ttyS0
# one open of the port (it is single-open); reads return 0 while the host is away, so loop
exec 3<>$port
while true; do cat <&3 >&3; usleep 10000; done
`;

export function floorInitrd(runtimeInitrd: string, outDir: string): string {
  const file = path.join(outDir, 'floor-initrd.img');
  const extra = newcArchive([{ name: 'floor-init', mode: S_IFREG | 0o755, data: Buffer.from(FLOOR_INIT) }]);
  fs.writeFileSync(file, Buffer.concat([fs.readFileSync(runtimeInitrd), extra]));
  return file;
}

/** QEMU's console socket, read into memory: waitFor(line) resolves once the line has been printed. */
async function watchConsole(
  socketPath: string,
  timeoutMs: number,
): Promise<{ waitFor(line: string, timeoutMs: number): Promise<void>; close(): void }> {
  const deadline = Date.now() + timeoutMs;
  let socket: net.Socket | null = null;
  while (!socket) {
    socket = await new Promise<net.Socket | null>((resolve) => {
      const s = net.connect(socketPath, () => resolve(s));
      s.once('error', () => resolve(null));
    });
    if (!socket) {
      if (Date.now() > deadline) throw new Error(`no console socket at ${socketPath}`);
      await sleep(2);
    }
  }
  let text = '';
  socket.on('data', (chunk: Buffer) => (text = (text + chunk.toString('utf8')).slice(-65536)));
  socket.on('error', () => undefined);
  const s = socket;
  return {
    async waitFor(line, waitMs) {
      const until = Date.now() + waitMs;
      while (!text.includes(line)) {
        if (Date.now() > until) throw new Error(`"${line}" did not appear on the console at ${socketPath}`);
        await sleep(2);
      }
    },
    close: () => s.destroy(),
  };
}

export interface FloorVm {
  bootMs: number;
  echo(bytes: Buffer): Promise<number>;
  stop(): Promise<void>;
}

/** Boot the floor VM; resolves when the echo loop runs. bootMs = spawn → first line on the console. */
const ECHO_TIMEOUT_MS = 10_000;

export async function bootFloor(
  qemuBinary: string,
  spec: Omit<MachineSpec, 'extraKernelArgs'>,
  overlayFrom: string,
  qemuImg: string,
): Promise<FloorVm> {
  fs.mkdirSync(vmPaths(spec.vmDir).run, { recursive: true }); // a bare QEMU makes its sockets there
  const p = vmPaths(spec.vmDir);
  await new Promise<void>((resolve, reject) =>
    spawn(qemuImg, ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', overlayFrom, spec.overlayPath]).on('exit', (c) =>
      c === 0 ? resolve() : reject(new Error('qemu-img failed')),
    ),
  );
  const started = performance.now();
  const child = spawn(qemuBinary, qemuArgs({ ...spec, extraKernelArgs: 'rdinit=/floor-init' }), { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
    fs.rmSync(spec.vmDir, { recursive: true, force: true });
  };
  let bootMs: number;
  let socket: net.Socket;
  try {
    const console = await watchConsole(p.serialSocket, 10_000);
    await console.waitFor('CAPSULE-FLOOR-READY', 60_000);
    bootMs = performance.now() - started;
    await console.waitFor('CAPSULE-ECHO-READY', 60_000);
    console.close();
    socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(p.agent, () => resolve(s));
      s.once('error', reject);
    });
  } catch (err) {
    await kill();
    throw err;
  }
  await sleep(200);
  return {
    bootMs,
    echo(bytes) {
      return new Promise((resolve, reject) => {
        const t0 = performance.now();
        let got = 0;
        // a floor VM that died (or an echo that never comes) fails the bench instead of hanging it
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `floor echo: no answer within ${ECHO_TIMEOUT_MS} ms (QEMU ` +
                  `${child.exitCode === null && child.signalCode === null ? 'running' : 'exited'})`,
              ),
            ),
          ECHO_TIMEOUT_MS,
        );
        const onData = (chunk: Buffer): void => {
          got += chunk.length;
          if (got >= bytes.length) {
            clearTimeout(timer);
            socket.off('data', onData);
            resolve(performance.now() - t0);
          }
        };
        socket.on('data', onData);
        socket.write(bytes);
      });
    },
    async stop() {
      socket.destroy();
      await kill();
    },
  };
}

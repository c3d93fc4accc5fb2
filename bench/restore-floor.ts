// The floor for "launch → first HTTP 200" of an image: a bare QEMU restoring the same app-ready snapshot by hand
// (same flags, RAM mapped from the same memory file) in a namespace, and a direct request to the guest's port
// through it until the app answers 200.
import fs from 'node:fs';
import path from 'node:path';
import type { VmShape } from '@capsule/protocol';
import { loadDeviceState, QmpClient, qemuArgs, vmPaths } from '@capsule/server/internals';
import type { Accelerator } from '@capsule/server/internals';
import { until200 } from './http.js';
import { createOverlay } from './overlay.js';
import { spawnQemuIn } from './floor-net.js';

export interface FloorRestore {
  /** The version's snapshot directory (memory, state, disk.qcow2). */
  snapshotDir: string;
  runtime: { kernelPath: string; initrdPath: string };
  shape: VmShape;
  accelerator: Accelerator;
  net: { netns: string; nsAddress: string };
  port: number;
}

/** One bare restore in `vmDir` (removed after): ms from spawn to the app's first 200. */
export async function floorRestoreTo200(floor: FloorRestore, vmDir: string, hostname: string): Promise<number> {
  fs.mkdirSync(vmPaths(vmDir).run, { recursive: true }); // a bare QEMU writes its sockets and console there
  const overlay = path.join(vmDir, 'disk.qcow2');
  await createOverlay(path.join(floor.snapshotDir, 'disk.qcow2'), overlay);
  const spec = {
    vmDir,
    kernelPath: floor.runtime.kernelPath,
    initrdPath: floor.runtime.initrdPath,
    overlayPath: overlay,
    ...floor.shape,
    accelerator: floor.accelerator,
    hostname,
    memory: { kind: 'file' as const, path: path.join(floor.snapshotDir, 'memory'), share: false },
    netns: floor.net.netns,
  };
  const start = performance.now();
  const child = spawnQemuIn(floor.net.netns, qemuArgs({ ...spec, incoming: true }));
  try {
    const qmp = await QmpClient.connect(vmPaths(vmDir).qmp, 10_000);
    await loadDeviceState(qmp, path.join(vmDir, 'in.sock'), path.join(floor.snapshotDir, 'state'), {
      ignoreShared: true,
      timeoutMs: 60_000,
    });
    await qmp.execute('cont');
    await until200(floor.port, {}, 30_000, floor.net.nsAddress); // through its namespace, as Capsule's endpoint goes
    const ms = performance.now() - start;
    qmp.close();
    return ms;
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(vmDir, { recursive: true, force: true });
  }
}

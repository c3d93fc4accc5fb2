// Taking a ready snapshot, for a runtime or for an image version's app: boot with RAM in a shared
// memory file, get the guest ready (`prepare`), save the device state, stop, and freeze the files in
// `dir` with a manifest that lets a later restore check them. The caller makes `dir` visible atomically.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fsyncPath } from '../durable.js';
import { chownNoFollow } from '../jail/vm-files.js';
import { Machine, type LaunchOptions, type SnapshotFiles } from '../vmm/machine.js';
import type { VmNetworks } from '../network/vm-networks.js';
import { untilIdle } from '../vmm/guest-idle.js';

/** A file's SHA-256, hex (snapshot manifests; the key a suspended state's base is published under). */
export function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function snapshotFilesIn(dir: string): SnapshotFiles {
  return {
    memoryPath: path.join(dir, 'memory'),
    statePath: path.join(dir, 'state'),
    diskPath: path.join(dir, 'disk.qcow2'),
  };
}

/** Are the snapshot's files still what was taken (checksum of the state, size of the memory)? */
export function verifySnapshot(files: SnapshotFiles): boolean {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(files.statePath), 'manifest.json'), 'utf8')) as {
      stateSha256?: string;
      memoryBytes?: number;
    };
    return (
      manifest.stateSha256 === sha256Of(files.statePath) &&
      manifest.memoryBytes === fs.statSync(files.memoryPath).size &&
      fs.existsSync(files.diskPath)
    );
  } catch {
    return false;
  }
}

export async function captureSnapshot(
  dir: string,
  launch: Omit<LaunchOptions, 'vmDir' | 'overlayPath' | 'memory' | 'restore'>,
  prepare: (machine: Machine) => Promise<void>,
  manifest: Record<string, unknown>,
  networks: VmNetworks | null,
): Promise<SnapshotFiles> {
  const files = snapshotFilesIn(dir);
  // in a namespace of its own with no egress: its NIC is a tap, as every clone's is (QEMU's device
  // state names the network backend, so a snapshot taken on user-mode networking restores only there)
  const netId = `snapshot-${path.basename(dir)}`;
  const net = networks
    ? await networks.attach(netId, { egress: 'none', allow: [], deny: [] }, { logEgress: false })
    : null;
  const machine = await Machine.launch({
    ...launch,
    netns: net?.netns,
    vmDir: path.join(dir, 'vm'),
    overlayPath: files.diskPath,
    memory: { kind: 'file', path: files.memoryPath, share: true },
  }).catch(async (err: unknown) => {
    await networks?.release(netId, null);
    throw err;
  });
  try {
    await prepare(machine);
    // settled first, however busy the host is: what the guest still had to do, every clone would do
    await untilIdle(machine.pid);
    // warm the exec path once so every clone starts with it paged in
    await machine.agent.exec({ command: ['true'] }).result;
    await machine.agent.prepareSnapshot();
    await machine.saveReadySnapshot(files.statePath);
  } finally {
    await machine.stop();
    await networks?.release(netId, null);
  }
  // frozen: root's and read-only, so no VM uid can write what every clone maps (the snapshot VM's uid
  // owned the memory file and the disk while it ran)
  for (const file of [files.memoryPath, files.diskPath, files.statePath]) {
    fsyncPath(file);
    chownNoFollow(file, 0, 0);
    fs.chmodSync(file, 0o444);
  }
  const full = {
    ...manifest,
    stateSha256: sha256Of(files.statePath),
    memoryBytes: fs.statSync(files.memoryPath).size,
    takenAt: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(full) + '\n');
  return files;
}

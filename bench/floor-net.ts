// The benchmarks' floors restore the same snapshots as Capsule, and a snapshot's NIC is a tap in a
// namespace: so a floor's bare QEMU runs in a namespace of its own too (from a VmNetworks of the
// bench's, on a pool no server uses), started with nsenter as root.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createLogger, EgressLogs, netnsPath, VmNetworks } from '@capsule/server/internals';

export async function floorNetworks(work: string): Promise<VmNetworks> {
  const networks = new VmNetworks(
    { pool: '10.203.0.0/24', poolSize: 1, privateAllow: [], upstreams: [], dataDir: path.join(work, 'floor-net') },
    new EgressLogs(path.join(work, 'floor-egress')),
    createLogger(process.stderr, true),
  );
  await networks.init(new Map());
  return networks;
}

/** Bare QEMU with `args`, inside `netns`. */
export function spawnQemuIn(netns: string, args: string[]): ChildProcess {
  return spawn('nsenter', [`--net=${netnsPath(netns)}`, '--', 'qemu-system-x86_64', ...args], { stdio: 'ignore' });
}

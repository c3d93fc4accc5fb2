// How an unjailed QEMU is started (CAPSULE_UNSAFE_NO_JAIL=1, development only): as the server's own
// user, inside the VM's network namespace through nsenter when it has one. Jailed QEMUs are started by
// the jail's launcher (jail/launcher.ts).
import { execFileSync } from 'node:child_process';
import { netnsPath } from '../network/netns.js';
import type { LaunchOptions } from './launch-options.js';
import { findExecutable, qemuMissing } from '../executables.js';

export function qemuCommand(opts: Pick<LaunchOptions, 'netns' | 'qemuBinary'>, args: string[]): [string, string[]] {
  if (!opts.netns) return [opts.qemuBinary, args];
  // nsenter would start and then fail to exec a missing QEMU: say so as plainly as a direct spawn does
  if (!findExecutable(opts.qemuBinary)) throw qemuMissing(opts.qemuBinary);
  return ['nsenter', [`--net=${netnsPath(opts.netns)}`, '--', opts.qemuBinary, ...args]];
}

const versions = new Map<string, string>();

/** `10.0.2` from `QEMU emulator version 10.0.2 (Debian …)`; 'unknown' when it cannot be run. */
export function qemuVersion(qemuBinary: string): string {
  let version = versions.get(qemuBinary);
  if (!version) {
    try {
      version =
        /version (\d+\.\d+\.\d+)/.exec(execFileSync(qemuBinary, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
    } catch {
      version = 'unknown';
    }
    versions.set(qemuBinary, version);
  }
  return version;
}

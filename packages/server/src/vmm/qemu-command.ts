// How a MicroVM's QEMU process is started: directly as its unprivileged user, or inside the VM's
// network namespace through nsenter + setpriv.
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { netnsPath } from '../network/netns.js';
import type { LaunchOptions, QemuIdentity } from './machine.js';

/**
 * How QEMU is started. In a VM's network namespace: nsenter (as root) enters it, setpriv drops to QEMU's
 * user, and both exec, so QEMU keeps the pid and never holds more than that user's rights; it opens the
 * namespace's tap, which that user owns. Otherwise QEMU is spawned as its user directly.
 */
export function qemuCommand(opts: LaunchOptions, args: string[]): [string, string[], QemuIdentity | Record<string, never>] {
  if (!opts.netns) return [opts.qemuBinary, args, opts.runAs ?? {}];
  // nsenter would start and then fail to exec a missing QEMU: say so as plainly as a direct spawn does
  if (!isExecutable(opts.qemuBinary)) throw qemuMissing(opts.qemuBinary);
  const drop = opts.runAs ? ['setpriv', `--reuid=${opts.runAs.uid}`, `--regid=${opts.runAs.gid}`, '--clear-groups', '--inh-caps=-all', '--'] : [];
  return ['nsenter', [`--net=${netnsPath(opts.netns)}`, '--', ...drop, opts.qemuBinary, ...args], {}];
}

export function qemuMissing(qemuBinary: string, cause?: unknown): CapsuleError {
  return new CapsuleError(ErrorCode.VMM_UNAVAILABLE, `QEMU binary "${qemuBinary}" not found: install qemu-system-x86 (the setup script does)`, { step: 'spawn', cause });
}

/** `command` is an executable file, by path or on PATH. */
function isExecutable(command: string): boolean {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(':').map((dir) => path.join(dir, command));
  return candidates.some((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}


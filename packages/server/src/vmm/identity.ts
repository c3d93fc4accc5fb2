// Resolve the unprivileged user QEMU runs as. Only possible when the server runs as root; the user must
// be able to read the runtime images and write the VM directories, which is checked once at start-up.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { QemuIdentity } from './machine.js';

export function resolveQemuIdentity(user: string | null, mustRead: string[], mustWriteDir: string): { identity: QemuIdentity | null; reason: string } {
  if (!user) return { identity: null, reason: 'QEMU runs as the server user (no qemu user configured)' };
  if (process.getuid?.() !== 0) return { identity: null, reason: 'QEMU runs as the server user (server is not root)' };
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  } catch {
    return { identity: null, reason: `QEMU runs as root: user ${user} does not exist (the setup script creates it)` };
  }
  fs.mkdirSync(mustWriteDir, { recursive: true });
  const checks = [...mustRead.map((f) => `test -r '${f}'`), `test -x '${mustWriteDir}'`].join(' && ');
  try {
    execFileSync('/bin/sh', ['-c', checks], { uid, gid, stdio: 'ignore' });
  } catch {
    return { identity: null, reason: `QEMU runs as root: user ${user} cannot reach the runtime images or ${mustWriteDir} (check directory permissions)` };
  }
  return { identity: { uid, gid }, reason: `QEMU runs as unprivileged user ${user} (uid ${uid})` };
}

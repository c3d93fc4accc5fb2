// Finding the executables Capsule runs (QEMU above all), and the error a missing QEMU answers with.
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

export function qemuMissing(qemuBinary: string, cause?: unknown): CapsuleError {
  return new CapsuleError(
    ErrorCode.VMM_UNAVAILABLE,
    `QEMU binary "${qemuBinary}" not found: install qemu-system-x86 (the setup script does)`,
    { step: 'spawn', cause },
  );
}

/** The absolute path of an executable file, by path or on PATH (as exec finds it), or null. */
export function findExecutable(command: string): string | null {
  const candidates = command.includes('/')
    ? [path.resolve(command)]
    : (process.env.PATH ?? '')
        .split(':')
        .filter(Boolean)
        .map((dir) => path.join(dir, command));
  return (
    candidates.find((file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    }) ?? null
  );
}

// A floor's disk: a fresh qcow2 overlay over a snapshot's disk, made by qemu-img directly.
import { spawn } from 'node:child_process';

export function createOverlay(backing: string, overlay: string): Promise<void> {
  return new Promise((resolve) => {
    spawn('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, overlay]).once('exit', () =>
      resolve(),
    );
  });
}

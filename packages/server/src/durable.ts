import fs from 'node:fs';

/** fsync a file or directory by path: what a rename-into-place needs before and after it. */
export function fsyncPath(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

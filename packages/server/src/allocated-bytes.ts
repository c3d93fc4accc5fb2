// What a file or directory tree really occupies on disk: allocated blocks, not apparent sizes, so a
// sparse 8 GiB overlay that holds 40 MiB counts 40 MiB. Links are not followed; a path that vanishes
// mid-walk (a VM terminated meanwhile) counts as nothing.
import fs from 'node:fs/promises';
import path from 'node:path';

export async function allocatedBytes(target: string): Promise<number> {
  let stat: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    stat = await fs.lstat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let bytes = stat.blocks * 512;
  if (!stat.isDirectory()) return bytes;
  let entries: string[];
  try {
    entries = await fs.readdir(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  for (const entry of entries) bytes += await allocatedBytes(path.join(target, entry));
  return bytes;
}

// Secrets the server keeps in its data dir (the admin key, the token secret, the server key): made on first start,
// mode 0600, created exclusively so that of two starts racing, one writes and both read the same.
import fs from 'node:fs';

/** The trimmed text of `file`, written as `make()` first if it does not exist yet. */
export function secretFileText(file: string, make: () => string): string {
  if (!fs.existsSync(file)) {
    try {
      fs.writeFileSync(file, `${make()}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return fs.readFileSync(file, 'utf8').trim();
}

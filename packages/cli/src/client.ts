// CLI connection settings: CAPSULE_URL and CAPSULE_API_KEY, defaulting to the local server's admin key.
import fs from 'node:fs';
import path from 'node:path';
import { Capsule } from '@capsule/sdk';
import { UsageError } from './args.js';

function dataDir(): string {
  return path.resolve(process.env.CAPSULE_DATA_DIR ?? '.capsule');
}

export function connect(): Capsule {
  const baseUrl = process.env.CAPSULE_URL ?? 'http://127.0.0.1:7070';
  let apiKey = process.env.CAPSULE_API_KEY;
  if (!apiKey) {
    const file = path.join(dataDir(), 'admin-key');
    try {
      apiKey = fs.readFileSync(file, 'utf8').trim();
    } catch {
      throw new UsageError(`no API key: set CAPSULE_API_KEY, or run \`capsule serve\` here first (it writes ${file})`);
    }
  }
  return new Capsule({ baseUrl, apiKey });
}

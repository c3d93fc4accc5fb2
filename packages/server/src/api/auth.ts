// API keys: random, shown once, stored as SHA-256. The admin key is created on first start and written
// (mode 0600) to <dataDir>/admin-key so the CLI on the same machine works with no set-up.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Store } from '../store/types.js';

export const DEFAULT_TENANT = 'default';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): string {
  return 'cap_' + randomBytes(32).toString('base64url');
}

export async function ensureAdminKey(dataDir: string, store: Store): Promise<string> {
  const file = path.join(dataDir, 'admin-key');
  let key: string;
  if (fs.existsSync(file)) key = fs.readFileSync(file, 'utf8').trim();
  else {
    key = newApiKey();
    fs.writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
  }
  await store.insertApiKey({ keyHash: hashKey(key), tenantId: DEFAULT_TENANT, isAdmin: true, createdAt: new Date().toISOString() });
  return key;
}

export async function authenticate(req: IncomingMessage, store: Store): Promise<{ tenantId: string; isAdmin: boolean }> {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'missing API key: send "Authorization: Bearer <key>"');
  const found = await store.findApiKey(hashKey(match[1]));
  if (!found) throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'invalid API key');
  return found;
}

// AWS-style access key pairs, so AWS's own clients (which sign with SigV4) can call Capsule. A pair belongs to
// an API key and its tenant; its secret is shown once, and stored sealed by the server key (never in plain
// text: verification must re-sign, so a hash would not do). The default tenant's pair is written to
// <data-dir>/aws-credentials (0600) on first start, like admin-key, for SDKs on the same machine.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Store } from '../store/types.js';
import type { ServerKey } from './server-key.js';
import type { AwsKeySecret } from './sigv4.js';

export interface AwsKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `AKIA` + 16 base32 characters (20, as AWS's), and a 40-character secret (240 random bits). */
export function newAwsKeyPair(): AwsKeyPair {
  const id = [...randomBytes(16)].map((b) => BASE32[b & 31]).join('');
  return { accessKeyId: `AKIA${id}`, secretAccessKey: randomBytes(30).toString('base64url') };
}

/** A new pair for API key `keyId` of `tenantId`: stored sealed, returned once in plain. */
export async function issueAwsKey(
  store: Store,
  serverKey: ServerKey,
  owner: { keyId: string; tenantId: string },
  pair: AwsKeyPair = newAwsKeyPair(),
): Promise<AwsKeyPair> {
  await store.insertAwsAccessKey({
    accessKeyId: pair.accessKeyId,
    keyId: owner.keyId,
    tenantId: owner.tenantId,
    secretSealed: serverKey.seal(pair.secretAccessKey, pair.accessKeyId),
    createdAt: new Date().toISOString(),
  });
  return pair;
}

/** What SigV4 verification needs of an access key id: its secret and tenant (null: no such key). */
export function awsKeyLookup(
  store: Store,
  serverKey: ServerKey,
): (accessKeyId: string) => Promise<AwsKeySecret | null> {
  return async (accessKeyId) => {
    const record = await store.findAwsAccessKey(accessKeyId);
    if (!record) return null;
    return { secretAccessKey: serverKey.open(record.secretSealed, accessKeyId), tenantId: record.tenantId };
  };
}

/**
 * The default tenant's pair, on its admin key: made on first start and written to <dataDir>/aws-credentials
 * (JSON `{accessKeyId, secretAccessKey}`, 0600). The file wins, as admin-key's does: a pair in it that the
 * store lacks (a new database) is stored again.
 */
export async function ensureDefaultAwsCredentials(
  dataDir: string,
  store: Store,
  serverKey: ServerKey,
  owner: { keyId: string; tenantId: string },
): Promise<AwsKeyPair> {
  const file = path.join(dataDir, 'aws-credentials');
  if (fs.existsSync(file)) {
    const pair = JSON.parse(fs.readFileSync(file, 'utf8')) as AwsKeyPair;
    const stored = await store.findAwsAccessKey(pair.accessKeyId);
    if (!stored) await issueAwsKey(store, serverKey, owner, pair);
    else if (
      stored.tenantId !== owner.tenantId ||
      serverKey.open(stored.secretSealed, pair.accessKeyId) !== pair.secretAccessKey
    ) {
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        `${file} names access key ${pair.accessKeyId}, which the store holds with another secret or tenant`,
      );
    }
    return pair;
  }
  const pair = newAwsKeyPair();
  const tmp = `${file}.new`;
  fs.writeFileSync(tmp, JSON.stringify(pair) + '\n', { mode: 0o600 });
  await issueAwsKey(store, serverKey, owner, pair);
  fs.renameSync(tmp, file);
  return pair;
}

// Access key pairs against a real SQLite store: issued once, stored sealed, found by SigV4's lookup,
// revoked with their API key; the default tenant's pair in <data-dir>/aws-credentials.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqlStore } from '../store/sql-store.js';
import { SqliteDriver } from '../store/sqlite-driver.js';
import { awsKeyLookup, ensureDefaultAwsCredentials, issueAwsKey, newAwsKeyPair } from './access-keys.js';
import { ServerKey } from './server-key.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-keys-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const ADMIN = { keyId: 'key-admin', tenantId: 'default' };

async function fresh(name: string): Promise<{ dir: string; store: SqlStore; serverKey: ServerKey }> {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  return {
    dir,
    store: await SqlStore.open(new SqliteDriver(path.join(dir, 'capsule.db'))),
    serverKey: ServerKey.load(dir),
  };
}

test('pairs look like AWS keys and are new each time', () => {
  const a = newAwsKeyPair();
  assert.match(a.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  assert.match(a.secretAccessKey, /^[A-Za-z0-9_-]{40}$/);
  assert.notEqual(newAwsKeyPair().accessKeyId, a.accessKeyId);
});

test('an issued pair is stored sealed, found with its tenant, and revoked with its API key', async () => {
  const { store, serverKey } = await fresh('issue');
  await store.insertApiKey({
    id: 'key-1',
    keyHash: 'h1',
    tenantId: 'acme',
    isAdmin: false,
    name: null,
    createdAt: new Date().toISOString(),
  });
  const pair = await issueAwsKey(store, serverKey, { keyId: 'key-1', tenantId: 'acme' });
  const row = await store.findAwsAccessKey(pair.accessKeyId);
  assert.ok(row && !row.secretSealed.includes(pair.secretAccessKey), 'never stored in plain text');
  const lookup = awsKeyLookup(store, serverKey);
  assert.deepEqual(await lookup(pair.accessKeyId), { secretAccessKey: pair.secretAccessKey, tenantId: 'acme' });
  assert.equal(await lookup('AKIANOSUCHKEY0000000'), null);
  assert.equal(await store.deleteApiKey('acme', 'key-1'), true);
  assert.equal(await lookup(pair.accessKeyId), null);
});

test('the default pair: written 0600 on first start, the same after, stored again in a new database', async () => {
  const { dir, store, serverKey } = await fresh('default');
  const first = await ensureDefaultAwsCredentials(dir, store, serverKey, ADMIN);
  const file = path.join(dir, 'aws-credentials');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), first);
  assert.deepEqual(await ensureDefaultAwsCredentials(dir, store, serverKey, ADMIN), first);
  // a new, empty database beside the same files: the file's pair is stored again
  const other = await SqlStore.open(new SqliteDriver(path.join(dir, 'second.db')));
  assert.deepEqual(await ensureDefaultAwsCredentials(dir, other, serverKey, ADMIN), first);
  assert.equal((await awsKeyLookup(other, serverKey)(first.accessKeyId))?.secretAccessKey, first.secretAccessKey);
  // a file whose secret the store contradicts is refused, not silently trusted
  fs.writeFileSync(file, JSON.stringify({ ...first, secretAccessKey: 'forged' }), { mode: 0o600 });
  await assert.rejects(ensureDefaultAwsCredentials(dir, store, serverKey, ADMIN), /another secret or tenant/);
});

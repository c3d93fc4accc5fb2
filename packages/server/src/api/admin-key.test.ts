// The admin key: alone, the server's file is the key; in a cluster, the store's (sealed under the cluster key) is,
// so servers with their own data dirs agree on one, two first starts at once too, and a rotation on one is the key
// of every other from its next start (and in force on all at once).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServerKey } from '../aws/server-key.js';
import { loadConfig } from '../config.js';
import { openTestStore, STORE_BACKENDS } from '../../../../tests/support/store-backends.js';
import { ensureAdminKey, rotateAdminKey } from './admin-key.js';
import { hashKey } from './auth.js';

const QUOTAS = loadConfig({}, {}).defaultQuotas;
const CLUSTER_KEY = 'a cluster key of the test, long enough';

function dataDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-admin-key-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const fileKey = (dir: string): string => fs.readFileSync(path.join(dir, 'admin-key'), 'utf8').trim();

for (const backend of STORE_BACKENDS)
  describe(`the admin key on ${backend.name}`, () => {
    test("in a cluster: the store's key is every server's, a rotation on one too", async (t) => {
      const store = await openTestStore(backend, t);
      const [a, b] = [dataDir(t), dataDir(t)];
      fs.writeFileSync(path.join(b, 'admin-key'), 'cap_made-by-hand-on-b\n', { mode: 0o600 });
      const cluster = (dir: string) => ServerKey.load(dir, CLUSTER_KEY);
      const keyA = await ensureAdminKey(a, store, QUOTAS, cluster(a));
      assert.equal(await ensureAdminKey(b, store, QUOTAS, cluster(b)), keyA, "b takes the cluster's key");
      assert.equal(fileKey(b), keyA, "and writes it to b's file");
      assert.equal((await store.findApiKey(hashKey(keyA)))?.isAdmin, true);
      assert.equal(await store.findApiKey(hashKey('cap_made-by-hand-on-b')), null);

      const rotated = await rotateAdminKey(a, store, cluster(a));
      assert.equal(await store.findApiKey(hashKey(keyA)), null, 'the old key stops at once, everywhere');
      assert.equal((await store.findApiKey(hashKey(rotated.key)))?.isAdmin, true);
      // b restarts: its file (the old key) does not bring the old key back
      assert.equal(await ensureAdminKey(b, store, QUOTAS, cluster(b)), rotated.key);
      assert.equal(fileKey(b), rotated.key);
      assert.equal(await store.findApiKey(hashKey(keyA)), null);
    });

    test('in a cluster: two first starts at once agree on one key', async (t) => {
      const store = await openTestStore(backend, t);
      const [c, d] = [dataDir(t), dataDir(t)];
      const keys = await Promise.all(
        [c, d].map((dir) => ensureAdminKey(dir, store, QUOTAS, ServerKey.load(dir, CLUSTER_KEY))),
      );
      assert.equal(keys[0], keys[1]);
      assert.deepEqual([fileKey(c), fileKey(d)], keys);
      assert.equal((await store.findApiKey(hashKey(keys[0])))?.isAdmin, true);
    });

    test("alone: the server's file is the key, one replaced by hand too", async (t) => {
      const store = await openTestStore(backend, t);
      const dir = dataDir(t);
      const first = await ensureAdminKey(dir, store, QUOTAS, null);
      fs.writeFileSync(path.join(dir, 'admin-key'), 'cap_replaced-by-hand\n', { mode: 0o600 });
      assert.equal(await ensureAdminKey(dir, store, QUOTAS, null), 'cap_replaced-by-hand');
      assert.equal(await store.findApiKey(hashKey(first)), null);
    });
  });

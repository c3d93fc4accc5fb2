// SQLite's one connection: a transaction's statements are its own. A statement from elsewhere while one is open
// waits for it (run on the connection meanwhile, it would join the transaction and be lost with its rollback), and
// transactions begun together queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteDriver } from './sqlite-driver.js';

test('a write from outside an open transaction is not lost when that transaction rolls back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-driver-'));
  const db = new SqliteDriver(path.join(dir, 'test.db'));
  t.after(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await db.exec('CREATE TABLE t (name TEXT)');
  let outside: Promise<number> | null = null;
  const refused = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t VALUES ('rolled back')");
    outside = db.run("INSERT INTO t VALUES ('outside')"); // issued while the transaction is open
    await tx.query('SELECT 1');
    throw new Error('refused');
  });
  const queued = db.transaction(async (tx) => tx.run("INSERT INTO t VALUES ('second transaction')"));
  await assert.rejects(refused, /refused/);
  assert.equal(await queued, 1);
  assert.equal(await outside, 1);
  const names = (await db.query('SELECT name FROM t ORDER BY name')).map((r) => r.name);
  assert.deepEqual(names, ['outside', 'second transaction']);
});

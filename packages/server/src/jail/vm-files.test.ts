// What a VM's uid can write is read without following links, without blocking, and only as a tail.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allocatedBytes, readTail } from './vm-files.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-files-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('a bounded tail of a regular file', () => {
  const log = path.join(work, 'serial.log');
  fs.writeFileSync(log, 'a'.repeat(10_000) + 'THE END');
  assert.equal(readTail(log, 7), 'THE END');
  assert.equal(readTail(log, 1_000_000).length, 10_007);
  assert.equal(readTail(path.join(work, 'missing'), 100), '');
});

test('a link planted in its place is not followed, a FIFO does not block, a directory is nothing', () => {
  const secret = path.join(work, 'admin-key');
  fs.writeFileSync(secret, 'secret');
  fs.symlinkSync(secret, path.join(work, 'link.log'));
  assert.equal(readTail(path.join(work, 'link.log'), 100), '');
  execFileSync('mkfifo', [path.join(work, 'fifo.log')]);
  assert.equal(readTail(path.join(work, 'fifo.log'), 100), '');
  assert.equal(readTail(work, 100), '');
});

test('disk bytes are the blocks a sparse file holds', () => {
  const sparse = path.join(work, 'sparse');
  fs.writeFileSync(sparse, '');
  fs.truncateSync(sparse, 1 << 30);
  assert.ok(allocatedBytes(sparse) < 1 << 20);
  assert.equal(allocatedBytes(path.join(work, 'missing')), 0);
});

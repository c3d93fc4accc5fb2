import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mappingsOf, prefetch, presentRanges, totalBytes } from './page-prefetch.js';

const MAPS = `
55d0c0000000-55d0c0001000 r--p 00000000 fd:01 1234   /usr/bin/qemu-system-x86_64
7f0000000000-7f0000004000 rw-p 00000000 00:2a 777    /memory
7f0000004000-7f0000006000 rw-p 00004000 00:2a 777    /memory
7f1000000000-7f1000001000 rw-p 00000000 00:00 0
`;

test('the mappings of the memory file are found by inode, with their file offsets', () => {
  assert.deepEqual(mappingsOf(MAPS, 777), [
    { start: 0x7f0000000000, end: 0x7f0000004000, fileOffset: 0 },
    { start: 0x7f0000004000, end: 0x7f0000006000, fileOffset: 0x4000 },
  ]);
  assert.deepEqual(mappingsOf(MAPS, 999), []);
});

test('present pages become coalesced file ranges; absent and swapped-only pages do not count', () => {
  const entries = Buffer.alloc(6 * 8);
  const present = 1n << 63n;
  for (const page of [0, 1, 3]) entries.writeBigUInt64LE(present | 42n, page * 8);
  entries.writeBigUInt64LE(1n << 62n, 4 * 8); // swapped, not present
  const ranges = presentRanges({ start: 0, end: 6 * 4096, fileOffset: 0x10000 }, entries);
  assert.deepEqual(ranges, [
    [0x10000, 8192],
    [0x10000 + 3 * 4096, 4096],
  ]);
  assert.equal(totalBytes(ranges), 12_288);
});

test('prefetch reads the ranges it is given, and a missing file is no error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prefetch-'));
  try {
    const file = path.join(dir, 'memory');
    fs.writeFileSync(file, Buffer.alloc(3 << 20));
    assert.equal(
      await prefetch(file, [
        [0, 4096],
        [1 << 20, 2 << 20],
      ]),
      4096 + (2 << 20),
    );
    assert.equal(await prefetch(path.join(dir, 'gone'), [[0, 4096]]), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

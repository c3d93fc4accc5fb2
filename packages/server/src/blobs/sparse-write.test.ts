// A sparse write gives back the same bytes whatever the chunking, its length set even when it ends in zeros, and
// leaves its zero blocks unallocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { prng } from '../../../../tests/support/prng.js';
import { sparseWriteStream } from './sparse-write.js';

test('sparse writes: the same bytes for any chunking, zero blocks as holes, a trailing zero run kept', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-sparse-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const seed = Number(process.env.SPARSE_SEED ?? Date.now() % 100_000);
  const random = prng(seed);
  const data = Buffer.alloc((16 << 20) + 1234); // ends in a partial block of zeros
  for (let i = 0; i < 40; i++) {
    const at = Math.floor(random() * (data.length - 5000));
    data.fill(1 + Math.floor(random() * 255), at, at + 1 + Math.floor(random() * 4999));
  }
  for (const round of [0, 1, 2]) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; ) {
      const size = round === 0 ? 65_536 : 1 + Math.floor(random() * 200_000);
      chunks.push(data.subarray(at, at + size));
      at += size;
    }
    const file = path.join(dir, `out-${round}`);
    await pipeline(Readable.from(chunks), sparseWriteStream(file, 0o600));
    assert.ok(fs.readFileSync(file).equals(data), `round ${round} (seed ${seed}): the same bytes`);
    assert.ok(fs.statSync(file).blocks * 512 < 2 << 20, `round ${round}: holes where it is zero`);
  }
});

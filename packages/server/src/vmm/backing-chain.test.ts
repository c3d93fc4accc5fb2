// The disk chain under a layer, read from qcow2 headers (made here by the real qemu-img).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backingChain } from './backing-chain.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'backing-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('raw ← qcow2 (absolute) ← qcow2 (relative name): every layer, top first', () => {
  const raw = path.join(work, 'rootfs.ext4');
  fs.writeFileSync(raw, Buffer.alloc(1 << 20));
  const layer = path.join(work, 'layer.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', raw, layer]);
  fs.mkdirSync(path.join(work, 'vm'));
  fs.linkSync(layer, path.join(work, 'vm', 'base-disk.qcow2'));
  const top = path.join(work, 'vm', 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base-disk.qcow2', top]);
  assert.deepEqual(backingChain(top), [top, path.join(work, 'vm', 'base-disk.qcow2'), raw]);
  assert.deepEqual(backingChain(raw), [raw]);
});

test('a link is refused (O_NOFOLLOW)', () => {
  fs.symlinkSync(path.join(work, 'rootfs.ext4'), path.join(work, 'link'));
  assert.throws(() => backingChain(path.join(work, 'link')), /ELOOP/);
});

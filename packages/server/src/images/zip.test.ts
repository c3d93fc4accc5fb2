// AppZip against hand-built zips (so names, modes and sizes can be anything an attacker writes).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { zipOf, type ZipSpec as Spec } from '../../../../tests/support/zip-writer.js';
import { AppZip, ZipError } from './zip.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-zip-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(specs: Spec[] | Buffer): string {
  const out = path.join(dir, `${++n}.zip`);
  fs.writeFileSync(out, Buffer.isBuffer(specs) ? specs : zipOf(specs));
  return out;
}

test('entries, modes and contents of a well-formed zip; symlinks inside the zip are fine', async () => {
  const zip = await AppZip.open(
    file([
      { name: 'app/' },
      { name: 'app/main.py', data: 'print(42)\n', deflate: true },
      { name: 'run.sh', data: '#!/bin/sh\n', mode: 0o100755 },
      { name: './Dockerfile', data: 'FROM python\n' },
      { name: 'app/current', data: 'main.py', mode: 0o120777 },
      { name: 'static/logo', data: '../app/main.py', mode: 0o120777 },
    ]),
  );
  try {
    assert.deepEqual(
      zip.entries.map((e) => [e.path, e.type, e.mode.toString(8)]),
      [
        ['app', 'dir', '755'],
        ['app/main.py', 'file', '644'],
        ['run.sh', 'file', '755'],
        ['Dockerfile', 'file', '644'],
        ['app/current', 'symlink', '777'],
        ['static/logo', 'symlink', '777'],
      ],
    );
    assert.equal((await zip.read('app/main.py')).toString(), 'print(42)\n');
    assert.ok(zip.has('Dockerfile'));
  } finally {
    zip.close();
  }
});

test('zip-slip, absolute paths, NUL, escaping symlinks, duplicates: each a ZipError naming the entry', async () => {
  const cases: Array<[Spec[], RegExp]> = [
    [[{ name: '../evil.sh', data: 'x' }], /"\.\.\/evil\.sh" climbs out of the zip/],
    [[{ name: 'a/../../evil', data: 'x' }], /climbs out/],
    [[{ name: '/etc/cron.d/evil', data: 'x' }], /"\/etc\/cron\.d\/evil" has an absolute path/],
    [[{ name: 'C:\\evil', data: 'x' }], /absolute path/],
    [[{ name: 'ok\0.txt', data: 'x' }], /NUL/],
    [[{ name: 'link', data: '/etc/shadow', mode: 0o120777 }], /symlink link points outside the zip \(\/etc\/shadow\)/],
    [[{ name: 'a/link', data: '../../up', mode: 0o120777 }], /symlink a\/link points outside/],
    [
      [
        { name: 'x', data: '1' },
        { name: './x', data: '2' },
      ],
      /entry x appears twice/,
    ],
  ];
  for (const [specs, expected] of cases) {
    await assert.rejects(
      AppZip.open(file(specs)),
      (err: Error) => err instanceof ZipError && expected.test(err.message),
      `${JSON.stringify(specs.map((s) => s.name))} → ${expected}`,
    );
  }
});

test('too many entries, a declared zip bomb, a lying zip bomb, a corrupt or truncated zip', async () => {
  await assert.rejects(
    AppZip.open(file(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' }))), {
      maxEntries: 10,
      maxExpandedBytes: 1 << 20,
    }),
    /11 entries; the limit is 10/,
  );
  const bomb = Buffer.alloc(64 << 20); // 64 MiB of zeros deflates to ~64 KiB
  await assert.rejects(
    AppZip.open(file([{ name: 'bomb', data: bomb, deflate: true }]), { maxEntries: 10, maxExpandedBytes: 16 << 20 }),
    /expands to more than 16777216 bytes \(at entry bomb\)/,
  );
  // declares 10 bytes, inflates to 64 MiB: the stream stops at the declared size
  const liar = await AppZip.open(file([{ name: 'liar', data: bomb, deflate: true, declaredSize: 10 }]), {
    maxEntries: 10,
    maxExpandedBytes: 16 << 20,
  });
  try {
    await assert.rejects(liar.read('liar'), /too many bytes|larger than|size/);
  } finally {
    liar.close();
  }
  await assert.rejects(
    AppZip.open(file(Buffer.from('PK\x03\x04 this is not really a zip'))),
    (err: Error) => err instanceof ZipError && /not a readable zip/.test(err.message),
  );
  const good = zipOf([{ name: 'a', data: 'hello' }]);
  await assert.rejects(AppZip.open(file(good.subarray(0, good.length - 10))), ZipError);
});

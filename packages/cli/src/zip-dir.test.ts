// A directory zipped as a stream, read back by the server's own zip reader (AppZip): files, nested
// directories, an executable mode, symlinks kept as links, the generated capsule.json.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AppZip } from '../../server/src/images/zip.js';
import { UsageError } from './args.js';
import { zipDirectory } from './zip-dir.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-zip-dir-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function appDir(): string {
  const dir = fs.mkdtempSync(path.join(work, 'app-'));
  fs.mkdirSync(path.join(dir, 'src/lib'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'empty'));
  fs.writeFileSync(path.join(dir, 'main.py'), 'print(42)\n');
  fs.writeFileSync(path.join(dir, 'src/lib/util.py'), 'x'.repeat(200_000)); // deflated, several chunks
  fs.writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(dir, 'run.sh'), 0o755);
  fs.chmodSync(path.join(dir, 'main.py'), 0o640);
  fs.chmodSync(path.join(dir, 'src/lib/util.py'), 0o644); // the rest whatever the umask
  for (const sub of ['empty', 'src', 'src/lib']) fs.chmodSync(path.join(dir, sub), 0o755);
  fs.symlinkSync('src/lib/util.py', path.join(dir, 'current'));
  fs.symlinkSync('../../main.py', path.join(dir, 'src/lib/main-link'));
  return dir;
}

async function written(dir: string, generated?: object): Promise<{ file: string; entryCount: number }> {
  const zip = zipDirectory(dir, generated);
  const file = `${dir}.zip`;
  await pipeline(zip.stream, fs.createWriteStream(file));
  return { file, entryCount: zip.entryCount };
}

test('files, nested directories, modes and symlinks survive, read by the server', async () => {
  const dir = appDir();
  const { file, entryCount } = await written(dir);
  const zip = await AppZip.open(file);
  try {
    assert.deepEqual(
      zip.entries.map((e) => [e.path, e.type, e.mode.toString(8), e.sizeBytes]),
      [
        ['current', 'symlink', '777', 'src/lib/util.py'.length],
        ['empty', 'dir', '755', 0],
        ['main.py', 'file', '640', 10],
        ['run.sh', 'file', '755', 18],
        ['src', 'dir', '755', 0],
        ['src/lib', 'dir', '755', 0],
        ['src/lib/main-link', 'symlink', '777', '../../main.py'.length],
        ['src/lib/util.py', 'file', '644', 200_000],
      ],
    );
    assert.equal(entryCount, 8);
    assert.equal((await zip.read('current')).toString(), 'src/lib/util.py');
    assert.equal((await zip.read('src/lib/main-link')).toString(), '../../main.py');
    assert.equal((await zip.read('run.sh')).toString(), '#!/bin/sh\necho hi\n');
    assert.ok((await zip.read('src/lib/util.py')).equals(Buffer.from('x'.repeat(200_000))));
    assert.ok(fs.statSync(file).size < 10_000, 'contents are deflated');
  } finally {
    zip.close();
  }
});

test(
  'a generated capsule.json comes last; a directory that cannot be zipped is a UsageError, ' + 'before or during',
  async () => {
    const dir = appDir();
    const { file } = await written(dir, { runtime: 'python', start: 'python3 main.py' });
    const zip = await AppZip.open(file);
    try {
      assert.equal(zip.entries.at(-1)!.path, 'capsule.json');
      assert.deepEqual(JSON.parse((await zip.read('capsule.json')).toString()), {
        runtime: 'python',
        start: 'python3 main.py',
      });
    } finally {
      zip.close();
    }
    assert.throws(() => zipDirectory(path.join(work, 'nope')), UsageError);
    // a file gone between the walk and its reading: the stream fails with a UsageError naming why
    const vanishing = zipDirectory(dir);
    fs.rmSync(path.join(dir, 'run.sh'));
    await assert.rejects(
      pipeline(vanishing.stream, fs.createWriteStream(`${dir}-2.zip`)),
      (err: Error) => err instanceof UsageError && /^cannot zip .*: ENOENT.*run\.sh/.test(err.message),
    );
  },
);

// The blob contract on a local directory and on a real S3-compatible server (s3rver on loopback).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import { BlobAccessError, BlobNotFoundError, LocalBlobStore, type BlobStore } from './blob-store.js';
import { getObject, parseS3Uri, s3Client, S3BlobStore, type S3Config } from './s3-blob-store.js';

const BUCKET = 'capsule-test';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-blobs-'));
let s3: S3rver;
let config: S3Config;

before(async () => {
  s3 = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory: path.join(dir, 's3'),
    silent: true,
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  const { address, port } = (await s3.run()) as unknown as { address: string; port: number };
  config = {
    endpoint: `http://${address}:${port}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
  };
});
after(async () => {
  await s3?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const stores: Array<[string, () => BlobStore]> = [
  ['a local directory', () => new LocalBlobStore(path.join(dir, 'local'))],
  ['S3 (s3rver)', () => new S3BlobStore(config, BUCKET, 'prefix', path.join(dir, 'cache'))],
];

for (const [name, make] of stores) {
  describe(`blobs in ${name}`, () => {
    test('put (buffer and 12 MiB stream), head, get, overwrite, delete; missing keys', async () => {
      const store = make();
      assert.deepEqual(await store.put('zips/app.zip', Buffer.from('small')), { sizeBytes: 5 });
      assert.equal((await drain(await store.get('zips/app.zip'))).toString(), 'small');
      const big = randomBytes(12 << 20);
      const stream = Readable.from(
        (function* () {
          for (let i = 0; i < big.length; i += 1 << 20) yield big.subarray(i, i + (1 << 20));
        })(),
      );
      assert.deepEqual(await store.put('snapshots/v1/memory', stream), { sizeBytes: big.length });
      assert.deepEqual(await store.head('snapshots/v1/memory'), { sizeBytes: big.length });
      const back = await drain(await store.get('snapshots/v1/memory'));
      assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(big).digest('hex'));
      await store.put('zips/app.zip', Buffer.from('replaced'));
      assert.equal((await drain(await store.get('zips/app.zip'))).toString(), 'replaced');
      await store.delete('zips/app.zip');
      assert.equal(await store.head('zips/app.zip'), null);
      await assert.rejects(store.get('zips/app.zip'), BlobNotFoundError);
      await store.delete('never/there'); // deleting nothing is fine
    });

    test(
      'putFile moves a file in; localFile gives a file with the bytes (downloaded again if the local ' +
        'copy is gone)',
      async () => {
        const store = make();
        const work = fs.mkdtempSync(path.join(dir, 'work-'));
        fs.writeFileSync(path.join(work, 'layer'), 'layer bytes');
        await store.putFile('images/t/app/1/layer.qcow2', path.join(work, 'layer'));
        assert.equal(fs.existsSync(path.join(work, 'layer')), false, 'moved, not copied');
        const local = await store.localFile('images/t/app/1/layer.qcow2');
        assert.equal(fs.readFileSync(local, 'utf8'), 'layer bytes');
        assert.deepEqual(await store.head('images/t/app/1/layer.qcow2'), { sizeBytes: 11 });
        if (store instanceof S3BlobStore) {
          fs.rmSync(local);
          assert.equal(
            fs.readFileSync(await store.localFile('images/t/app/1/layer.qcow2'), 'utf8'),
            'layer bytes',
            'fetched from S3 again',
          );
        }
        await store.delete('images/t/app/1/layer.qcow2');
        await assert.rejects(store.localFile('images/t/app/1/layer.qcow2'), BlobNotFoundError);
      },
    );

    test('a file just uploaded seeds localFile: no download, the same file (S3); a local store has it', async () => {
      const store = make();
      const work = fs.mkdtempSync(path.join(dir, 'seed-'));
      const file = path.join(work, 'memory');
      fs.writeFileSync(file, 'base memory');
      await store.put('bases/abc/memory', fs.readFileSync(file));
      store.seedLocalFile('bases/abc/memory', file);
      store.seedLocalFile('bases/abc/memory', file); // twice: nothing changes
      const local = await store.localFile('bases/abc/memory');
      assert.equal(fs.readFileSync(local, 'utf8'), 'base memory');
      if (store instanceof S3BlobStore) assert.equal(fs.statSync(local).ino, fs.statSync(file).ino, 'a hard link');
      await store.delete('bases/abc/memory');
    });

    test('usageBytes sums what is stored under a prefix, and nothing beside it', async () => {
      const store = make();
      assert.equal(await store.usageBytes('images/nobody'), 0, 'an empty prefix holds nothing');
      await store.put('images/ten-u/app/1/app.zip', randomBytes(300_000));
      await store.put('images/ten-u/app/2/layer.qcow2', randomBytes(700_000));
      await store.put('images/ten-u2/app/1/app.zip', randomBytes(50_000)); // a prefix of the name, another tenant
      const used = await store.usageBytes('images/ten-u');
      // S3 counts object sizes; a local directory counts allocated blocks (4 KiB granules, plus directories)
      assert.ok(used >= 1_000_000 && used < 1_100_000, `usage ${used}`);
      await store.delete('images/ten-u/app/2/layer.qcow2');
      const after = await store.usageBytes('images/ten-u');
      assert.ok(after >= 300_000 && after < 400_000, `usage after a delete ${after}`);
    });

    test('list: every object under a prefix with its size and time, nothing beside it; local copies', async () => {
      const store = make();
      assert.deepEqual(await store.list('listed/none'), []);
      const before = Date.now() - 2000; // S3 keeps times to the second
      await store.put('listed/a/1', Buffer.from('one'));
      await store.put('listed/a/b/2', Buffer.from('three'));
      await store.put('listed/ab/3', Buffer.from('x')); // a prefix of the name
      const listed = (await store.list('listed/a')).sort((x, y) => x.key.localeCompare(y.key));
      assert.deepEqual(
        listed.map((o) => [o.key, o.sizeBytes]),
        [
          ['listed/a/1', 3],
          ['listed/a/b/2', 5],
        ],
      );
      assert.ok(listed.every((o) => o.modifiedAtMs >= before && o.modifiedAtMs <= Date.now() + 2000));
      if (store instanceof S3BlobStore) {
        const local = await store.localFile('listed/a/1'); // downloaded into the cache
        assert.deepEqual(store.localCopies('listed/a'), ['listed/a/1']);
        store.forgetLocal('listed/a/1');
        assert.equal(fs.existsSync(local), false);
        assert.equal(await store.head('listed/a/1').then((h) => h?.sizeBytes), 3, 'the object stays');
      } else assert.deepEqual(store.localCopies('listed/a'), []);
    });

    test('a file put gzipped comes back whole from any cache state; if-stored reads what is there', async () => {
      const store = make();
      const memory = Buffer.alloc(3 << 20);
      memory.write('a page of guest memory', 1 << 20);
      const file = path.join(dir, 'memory-to-put');
      fs.writeFileSync(file, memory);
      await store.putFile('gz/snapshot/memory', file, { gzipped: true });
      const stored = (await store.list('gz/snapshot')).map((o) => o.key);
      assert.deepEqual(stored, store instanceof S3BlobStore ? ['gz/snapshot/memory.gz'] : ['gz/snapshot/memory']);
      if (store instanceof S3BlobStore) {
        assert.ok((await store.head('gz/snapshot/memory.gz'))!.sizeBytes < 64 << 10, 'zeros shrink');
        store.forgetLocal('gz/snapshot/memory'); // another host: nothing cached
      }
      for (const gzipped of [true, 'if-stored'] as const) {
        const local = await store.localFile('gz/snapshot/memory', { gzipped });
        assert.ok(fs.readFileSync(local).equals(memory), `gzipped: ${gzipped}`);
        if (store instanceof S3BlobStore) store.forgetLocal('gz/snapshot/memory');
      }
      // one stored before, not gzipped
      await store.put('gz/old/memory', memory);
      assert.ok(fs.readFileSync(await store.localFile('gz/old/memory', { gzipped: 'if-stored' })).equals(memory));
    });

    test('keys that could escape are refused', async () => {
      const store = make();
      for (const key of ['../x', 'a/../../x', '/abs', 'a//b', 'sp ace', '', 'a/./b']) {
        await assert.rejects(store.put(key, Buffer.from('x')), /invalid blob key/, key);
      }
    });
  });
}

test('s3:// code URIs: parsed, read; a missing object and bad credentials are named plainly', async () => {
  assert.deepEqual(parseS3Uri('s3://capsule-test/apps/flask.zip'), { bucket: 'capsule-test', key: 'apps/flask.zip' });
  for (const bad of ['s3://', 's3://b', 'http://x/y', 's3://UPPER/key', 's3://bucket/'])
    assert.equal(parseS3Uri(bad), null, bad);
  const store = new S3BlobStore(config, BUCKET);
  await store.put('apps/flask.zip', Buffer.from('PK…'));
  const client = s3Client(config);
  assert.equal((await drain(await getObject(client, BUCKET, 'apps/flask.zip'))).toString(), 'PK…');
  await assert.rejects(
    getObject(client, BUCKET, 'apps/missing.zip'),
    (err: Error) =>
      err instanceof BlobNotFoundError && /s3:\/\/capsule-test: no object apps\/missing\.zip/.test(err.message),
  );
  await assert.rejects(
    getObject(client, 'no-such-bucket', 'x'),
    (err: Error) => err instanceof BlobAccessError || err instanceof BlobNotFoundError,
  );
  const wrong = s3Client({ ...config, accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong-secret' });
  await assert.rejects(
    getObject(wrong, BUCKET, 'apps/flask.zip'),
    (err: Error) => err instanceof BlobAccessError && /access refused .*check the S3 credentials/.test(err.message),
  );
  client.destroy();
  wrong.destroy();
});

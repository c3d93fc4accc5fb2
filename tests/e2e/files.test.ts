// Files through the REST API and SDK: streamed upload/download, atomic writes, list/stat/mkdir/remove,
// and the path rules.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { NotFoundError, type MicroVM } from '@capsule/sdk';
import { errorOf, useTestServer } from './helpers.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('files in a MicroVM', () => {
  const server = useTestServer();
  let vm: MicroVM;
  before(async () => {
    vm = await server().capsule.microvms.run({ imageName: 'base' });
  });

  test('write, read back, and see it from a process in the guest', async () => {
    const stat = await vm.files.write('/root/hello.txt', 'hello from the host\n');
    assert.deepEqual([stat.type, stat.sizeBytes, stat.path], ['file', 20, '/root/hello.txt']);
    assert.equal(await vm.files.readText('/root/hello.txt'), 'hello from the host\n');
    assert.equal((await vm.exec(['cat', '/root/hello.txt'])).stdout, 'hello from the host\n');
  });

  test('a 24 MiB binary file streams both ways intact', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    await vm.files.write('/root/big.bin', data);
    const sum = await vm.exec(['sha256sum', '/root/big.bin']);
    assert.equal(sum.stdout.split(' ')[0], sha(data));
    const back = await vm.files.read('/root/big.bin');
    assert.equal(back.length, data.length);
    assert.equal(sha(back), sha(data));
  });

  test('files whose stat size means nothing (procfs) download whole, chunked', async () => {
    const response = await server().api('GET', `/v1/microvms/${vm.id}/files?path=/proc/self/status`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), null);
    assert.match(await response.text(), /^Name:/m);
    const regular = await server().api('GET', `/v1/microvms/${vm.id}/files?path=/etc/hostname`);
    assert.equal(Number(regular.headers.get('content-length')), (await regular.arrayBuffer()).byteLength);
  });

  test('mkdir, list, stat, remove', async () => {
    await vm.files.mkdir('/root/tree/a/b');
    await vm.files.write('/root/tree/a/one.txt', '1');
    const entries = await vm.files.list('/root/tree/a');
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ['b', 'dir'],
        ['one.txt', 'file'],
      ],
    );
    assert.equal((await vm.files.stat('/root/tree/a/one.txt')).sizeBytes, 1);
    await assert.rejects(vm.files.remove('/root/tree'), /ENOTEMPTY|EISDIR|directory/i);
    await vm.files.remove('/root/tree', { recursive: true });
    await assert.rejects(vm.files.stat('/root/tree'), NotFoundError);
  });

  test(
    'a project written file by file: missing parent directories are made (0755), as E2B and Daytona ' + 'do',
    async () => {
      const stat = await vm.files.write('/srv/proj/pkg/a.py', 'print("a")\n');
      assert.equal(stat.path, '/srv/proj/pkg/a.py');
      await vm.files.write('/srv/proj/pkg/b.py', 'print("b")\n'); // into the directory just made
      const seen = await vm.exec([
        'sh',
        '-c',
        'stat -c "%a %U" /srv/proj /srv/proj/pkg && cat /srv/proj/pkg/a.py /srv/proj/pkg/b.py',
      ]);
      assert.equal(seen.stdout, '755 root\n755 root\nprint("a")\nprint("b")\n', seen.stderr);
      // a path through a file is still an error, and leaves nothing
      const through = await errorOf(
        await server().api('PUT', `/v1/microvms/${vm.id}/files?path=/srv/proj/pkg/a.py/c`, 'x', {
          'content-type': 'application/octet-stream',
        }),
      );
      assert.ok(through.status >= 400 && through.status < 500, `${through.status} ${through.message}`);
    },
  );

  test('missing files are 404; bad paths are 400; nothing half-written is left', async () => {
    await assert.rejects(vm.files.read('/root/nope'), NotFoundError);
    for (const path of ['relative/x', '/root/../etc/passwd', '']) {
      const error = await errorOf(
        await server().api('GET', `/v1/microvms/${vm.id}/files?path=${encodeURIComponent(path)}`),
      );
      assert.equal(error.status, 400, `${path}: ${error.message}`);
    }
    const nul = await errorOf(await server().api('GET', `/v1/microvms/${vm.id}/files?path=%2Froot%2Fa%00b`));
    assert.equal(nul.status, 400);
    const noDir = await errorOf(
      await server().api('PUT', `/v1/microvms/${vm.id}/files?path=/no/such/dir/file&parents=false`, 'x', {
        'content-type': 'application/octet-stream',
      }),
    );
    assert.equal(noDir.status, 404);
    assert.equal(noDir.message.match(/ENOENT/g)?.length, 1, `the errno once: ${noDir.message}`);
    await assert.rejects(vm.files.write('/no/such/dir/file', 'x', { parents: false }), NotFoundError);
    const leftovers = await vm.exec(['sh', '-c', 'ls -a /root | grep -c capsule- || true']);
    assert.equal(leftovers.stdout.trim(), '0');
  });
});

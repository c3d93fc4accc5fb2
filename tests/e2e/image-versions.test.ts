// Versions per image are capped: a new version prunes the oldest one no MicroVM uses; when every
// version is in use, the new one is refused with 429 QUOTA_EXCEEDED and nothing is deleted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zipOf } from '../support/zip-writer.js';
import { errorOf, withTestServer } from './helpers.js';

const zip = (n: number): Buffer =>
  zipOf([{ name: 'capsule.json', data: JSON.stringify({ runtime: 'base', env: { N: String(n) } }) }]);

test('image versions are capped: the oldest unused is pruned; all in use is 429', async () => {
  await withTestServer({ maxVersionsPerImage: 1 }, async (server) => {
    const { capsule } = server;
    const v1 = await capsule.images.create('capped', { zip: zip(1) });
    assert.equal((await capsule.images.waitUntilBuilt('capped', v1.version)).state, 'SUCCESSFUL');
    const v2 = await capsule.images.create('capped', { zip: zip(2) });
    assert.deepEqual(
      (await capsule.images.get('capped')).versions.map((v) => v.version),
      [v2.version],
      'version 1 was pruned',
    );
    assert.equal((await capsule.images.waitUntilBuilt('capped', v2.version)).state, 'SUCCESSFUL');

    const vm = await capsule.microvms.run({ imageName: 'capped' });
    const upload = await fetch(`${server.url}/v1/images?name=capped`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/zip' },
      body: new Uint8Array(zip(3)),
    });
    const refused = await errorOf(upload);
    assert.deepEqual([refused.status, refused.code], [429, 'QUOTA_EXCEEDED']);
    assert.match(refused.message, /image capped has 1 versions \(the most kept is 1\)/);
    assert.deepEqual(
      (await capsule.images.get('capped')).versions.map((v) => v.version),
      [v2.version],
      'nothing was deleted',
    );
    assert.equal((await vm.exec(['sh', '-c', 'echo $N'])).stdout, '2\n');
    await vm.terminate();
  });
});

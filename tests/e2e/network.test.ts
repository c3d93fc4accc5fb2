// Network: each VM has its own user-mode stack; egress is off unless asked for.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { useTestServer } from './helpers.js';

// the host as seen from a slirp guest
const HOST_FROM_GUEST = '10.0.2.2';

describe('egress', () => {
  const server = useTestServer();
  let web: http.Server;
  let port: number;
  before(async () => {
    web = http.createServer((_req, res) => res.end('reachable'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    port = (web.address() as AddressInfo).port;
  });
  after(async () => {
    web?.close();
  });

  const probe = (): string =>
    `require('http').get('http://${HOST_FROM_GUEST}:${port}/', (r) => { r.pipe(process.stdout); }).on('error', (e) => { console.log('blocked:', e.code); process.exit(3); }).setTimeout(3000, function () { console.log('blocked: timeout'); process.exit(3); });`;

  test('egress none (default): the guest cannot open connections out', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    try {
      assert.equal(vm.info.egress, 'none');
      const result = await vm.exec(['node', '-e', probe()]);
      assert.equal(result.exitCode, 3, result.stdout + result.stderr);
      assert.match(result.stdout, /blocked/);
    } finally {
      await vm.terminate();
    }
  });

  test('egress all: the guest reaches the outside (here: a server on the host)', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base', network: { egress: 'all' } });
    try {
      const result = await vm.exec(['node', '-e', probe()]);
      assert.equal(result.stdout, 'reachable', result.stderr);
      assert.equal(result.exitCode, 0);
    } finally {
      await vm.terminate();
    }
  });
});

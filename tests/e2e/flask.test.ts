// The examples as a user builds them: `capsule image create --dir` of the Flask app (Dockerfile, hooks)
// and of the Node app (capsule.json); three Flask MicroVMs launched at once from the app-ready snapshot,
// each serving its page through its endpoint; the app's hooks called in order, with the run payload.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { MicroVM } from '@capsule/sdk';
import { endpointGet, runCli, useTestServer, EXAMPLES } from './helpers.js';

const get = (apiPort: number, vm: MicroVM, token: string, urlPath: string, port?: number) =>
  endpointGet(`http://127.0.0.1:${apiPort}`, vm.id, { 'x-capsule-auth': token }, urlPath, port);

describe('examples', () => {
  const server = useTestServer();

  test(
    'flask-app: built from its directory; 3 MicroVMs at once serve the page; hooks in order with the ' + 'payload',
    async () => {
      const build = await runCli(server().url, server().adminKey, [
        'image',
        'create',
        'flask-app',
        '--dir',
        path.join(EXAMPLES, 'flask-app'),
      ]);
      assert.equal(build.code, 0, build.stdout + build.stderr);
      assert.match(build.stdout, /^flask-app:1 +SUCCESSFUL/m);
      assert.match(build.stderr, /==> line 4: COPY \. \/app\//);
      assert.match(build.stderr, /app ready and snapshotted/);

      const apiPort = Number(new URL(server().url).port);
      const vms = await Promise.all(
        [0, 1, 2].map((i) => server().capsule.microvms.run({ imageName: 'flask-app', runHookPayload: `payload-${i}` })),
      );
      try {
        assert.deepEqual(
          vms.map((vm) => vm.info.launchedFrom),
          ['snapshot', 'snapshot', 'snapshot'],
        );
        await Promise.all(
          vms.map(async (vm, i) => {
            const { token } = await vm.createAuthToken({ allowedPorts: [8080] });
            const page = await get(apiPort, vm, token, '/');
            assert.equal(page.status, 200, page.body);
            assert.match(page.body, /<h1>Hello from a Capsule MicroVM<\/h1>/);
            assert.match(page.body, new RegExp(`MicroVM <code>${vm.id}</code>`), 'each clone has its own hostname');
            const hooks = JSON.parse((await get(apiPort, vm, token, '/hooks')).body) as Array<{
              hook: string;
              payload: string;
            }>;
            assert.deepEqual(hooks, [
              { hook: 'ready', payload: '' },
              { hook: 'run', payload: `payload-${i}` },
            ]);
          }),
        );
        const [first] = vms;
        // `capsule logs` of an image VM: the console, then the app's own output (Werkzeug logs each request)
        assert.match(await first.logs(), /--- app output ---\n[\s\S]*"GET \/ HTTP\/1\.[01]" 200/);
        await first.suspend();
        await first.resume();
        const { token } = await first.createAuthToken();
        const hooks = JSON.parse((await get(apiPort, first, token, '/hooks')).body) as Array<{ hook: string }>;
        assert.deepEqual(
          hooks.map((h) => h.hook),
          ['ready', 'run', 'suspend', 'resume'],
        );
        // a shape the snapshot was not taken for boots, starts the app and waits for it, then serves the same
        const big = await server().capsule.microvms.run({
          imageName: 'flask-app',
          memoryMib: 640,
          runHookPayload: 'big',
        });
        vms.push(big);
        assert.equal(big.info.launchedFrom, 'boot');
        const bigToken = (await big.createAuthToken()).token;
        assert.match((await get(apiPort, big, bigToken, '/')).body, /<h1>Hello from a Capsule MicroVM<\/h1>/);
        assert.deepEqual(JSON.parse((await get(apiPort, big, bigToken, '/hooks')).body), [
          { hook: 'ready', payload: '' },
          { hook: 'run', payload: 'big' },
        ]);
      } finally {
        await Promise.all(vms.map((vm) => vm.terminate()));
      }
      const rm = await runCli(server().url, server().adminKey, ['image', 'rm', 'flask-app']);
      assert.equal(rm.code, 0, rm.stderr);
    },
  );

  test('node-app: capsule.json on the node runtime; the app answers on its port', async () => {
    const build = await runCli(server().url, server().adminKey, [
      'image',
      'create',
      'node-app',
      '--dir',
      path.join(EXAMPLES, 'node-app'),
      '--json',
    ]);
    assert.equal(build.code, 0, build.stdout + build.stderr);
    assert.equal(JSON.parse(build.stdout).state, 'SUCCESSFUL');
    const vm = await server().capsule.microvms.run({ imageName: 'node-app' });
    try {
      const { token } = await vm.createAuthToken({ allowedPorts: [3000] });
      const answer = await get(Number(new URL(server().url).port), vm, token, '/x', 3000);
      assert.equal(answer.status, 200, answer.body);
      assert.deepEqual(JSON.parse(answer.body), { hello: 'from node', hostname: vm.id, env: 'production', path: '/x' });
    } finally {
      await vm.terminate();
    }
    const logs = await runCli(server().url, server().adminKey, ['image', 'logs', 'node-app:1']);
    assert.match(logs.stdout, /node --check server\.js/);
  });
});

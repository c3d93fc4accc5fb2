// The SDK end to end, as a developer coming from E2B would use it: run → write a Python file → exec
// it with streamed output → download its output → suspend → resume → reach `python3 -m http.server`
// in the VM through its endpoint with a scoped token → terminate. Then 20 clients × 10 execs at once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Capsule } from '@capsule/sdk';
import { endpointGet, useTestServer } from './helpers.js';

/** GET a path of a MicroVM's endpoint URL (vm.url(8080): http://{id}.localhost:{apiPort}). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  return endpointGet(`http://127.0.0.1:${target.port}`, target.hostname.split('.')[0], headers, target.pathname);
}

const JOB = `import csv, sys, time
rows = [(i, i * i) for i in range(5)]
for i, sq in rows:
    print(f"row {i}", flush=True)
    time.sleep(0.05)
with open("/root/out.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
print("done", file=sys.stderr)
`;

describe('SDK journey', () => {
  const server = useTestServer();

  test('run, write, exec streamed, download, suspend, resume, endpoint with a token, terminate', async () => {
    const capsule = new Capsule({ baseUrl: server().url, apiKey: server().adminKey });
    const vm = await capsule.microvms.run({ imageName: 'python', metadata: { journey: 'sdk' } });
    assert.equal(vm.state, 'RUNNING');
    await vm.files.write('/root/job.py', JOB);

    const stdout: string[] = [];
    let stderr = '';
    let exit: { exitCode: number | null } | null = null;
    for await (const event of vm.execStream(['python3', '/root/job.py'])) {
      if (event.type === 'stdout') stdout.push(Buffer.from(event.data).toString());
      else if (event.type === 'stderr') stderr += Buffer.from(event.data).toString();
      else exit = event;
    }
    assert.equal(exit?.exitCode, 0);
    assert.equal(stdout.join(''), 'row 0\nrow 1\nrow 2\nrow 3\nrow 4\n');
    assert.ok(stdout.length > 1, 'output arrives as it is printed, not all at the end');
    assert.equal(stderr, 'done\n');
    const csv = '0,0\r\n1,1\r\n2,4\r\n3,9\r\n4,16\r\n';
    assert.equal(Buffer.from(await vm.files.read('/root/out.csv')).toString(), csv);

    assert.equal((await vm.suspend()).state, 'SUSPENDED');
    assert.equal((await vm.resume()).state, 'RUNNING');
    assert.equal(await vm.files.readText('/root/out.csv'), csv, 'files survive suspend/resume');

    await vm.execBackground(['python3', '-m', 'http.server', '8080', '--bind', '127.0.0.1', '--directory', '/root']);
    const { token } = await vm.createAuthToken({ allowedPorts: [8080], ttlSeconds: 300 });
    let page = { status: 0, body: '' };
    for (let i = 0; i < 100 && page.status !== 200; i++) {
      page = await get(`${vm.url(8080)}/out.csv`, { 'x-capsule-auth': token });
      if (page.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(page.status, 200, page.body);
    assert.equal(page.body, csv);
    assert.equal((await get(`${vm.url(8080)}/out.csv`, {})).status, 401, 'no token, no entry');

    assert.equal((await vm.terminate()).state, 'TERMINATED');
  });

  test('20 concurrent clients × 10 execs each: every one answered, with its own output', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    try {
      const clients = Array.from(
        { length: 20 },
        () => new Capsule({ baseUrl: server().url, apiKey: server().adminKey }),
      );
      const results = await Promise.all(
        clients.map(async (client, c) => {
          const handle = await client.microvms.get(vm.id);
          const outputs: string[] = [];
          for (let i = 0; i < 10; i++) {
            const result = await handle.exec(['echo', `client-${c}-exec-${i}`]);
            assert.equal(result.exitCode, 0);
            outputs.push(result.stdout);
          }
          return outputs;
        }),
      );
      for (const [c, outputs] of results.entries())
        assert.deepEqual(
          outputs,
          Array.from({ length: 10 }, (_, i) => `client-${c}-exec-${i}\n`),
        );
    } finally {
      await vm.terminate();
    }
  });
});

// The MicroVM endpoint: HTTP and Upgrade (WebSocket) to guest ports through the agent tunnel, by Host
// name or the /v1 proxy path, authorised by scoped tokens or the owner's key; bodies stream both ways.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Capsule, type MicroVM } from '@capsule/sdk';
import { useTestServer } from './helpers.js';

// a guest app on 8080 and 9000: echoes what it got, counts uploads, streams downloads, echoes upgrades
const APP = `
const http = require('http'), crypto = require('crypto');
const handler = (port) => (req, res) => {
  if (req.url === '/upload') {
    let bytes = 0; const hash = crypto.createHash('sha256');
    req.on('data', (c) => { bytes += c.length; hash.update(c); });
    req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
    return;
  }
  const big = /^\\/big\\?mib=(\\d+)$/.exec(req.url);
  if (big) {
    let left = Number(big[1]) * 16, i = 0;
    const more = () => {
      while (left > 0) { left--; if (!res.write(Buffer.alloc(65536, i++ % 251))) return res.once('drain', more); }
      res.end();
    };
    return more();
  }
  res.setHeader('x-app-port', String(port));
  res.end(JSON.stringify({ port, method: req.method, path: req.url, headers: req.headers }));
};
for (const port of [8080, 9000]) {
  const server = http.createServer(handler(port));
  server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n');
    socket.pipe(socket);
  });
  server.listen(port, '127.0.0.1');
}`;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

describe('MicroVM endpoint', () => {
  const server = useTestServer();
  let vm: MicroVM;
  let apiPort: number;

  function request(
    path: string,
    headers: Record<string, string>,
    body?: Buffer | (() => AsyncIterable<Buffer>),
    method = body ? 'POST' : 'GET',
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: apiPort, path, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body instanceof Buffer) req.end(body);
      else if (body)
        void (async () => {
          for await (const chunk of (body as () => AsyncIterable<Buffer>)())
            if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
          req.end();
        })();
      else req.end();
    });
  }
  const host = (port?: number): string => `${port ? `${port}-` : ''}${vm.id}.localhost:${apiPort}`;
  const json = (answer: Answer): Record<string, unknown> => JSON.parse(answer.body.toString());

  before(async () => {
    apiPort = Number(new URL(server().url).port);
    vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.files.write('/root/app.js', APP);
    await vm.execBackground(['node', '/root/app.js']);
    for (let i = 0; i < 100; i++) {
      const answer = await request('/', { host: host(), 'x-capsule-auth': server().adminKey });
      if (answer.status === 200) return;
      if (i % 20 === 19) console.error('endpoint not ready:', answer.status, answer.body.toString().slice(0, 300));
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the guest app never answered through the endpoint');
  });
  after(async () => {
    await vm?.terminate().catch(() => undefined);
  });

  test('a scoped token reaches the allowed port by Host name; Capsule headers stay out of the app', async () => {
    assert.equal(vm.info.endpoint, `http://${vm.id}.localhost:${apiPort}`);
    assert.equal(vm.url(9000), `http://9000-${vm.id}.localhost:${apiPort}`);
    const { token, allowedPorts } = await vm.createAuthToken({ allowedPorts: [8080], ttlSeconds: 60 });
    assert.deepEqual(allowedPorts, [8080]);
    const answer = await request('/hello?x=1', { host: host(), 'x-capsule-auth': token, 'x-custom': 'kept' });
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.headers['x-app-port'], '8080');
    const seen = json(answer) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/hello?x=1');
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-capsule-auth'], undefined, 'the token never reaches the app');
    assert.equal(seen.headers['x-forwarded-host'], host());
    // the same token on a port it does not allow: 403, by header or by host prefix
    assert.equal((await request('/', { host: host(), 'x-capsule-auth': token, 'x-capsule-port': '9000' })).status, 403);
    assert.equal((await request('/', { host: host(9000), 'x-capsule-auth': token })).status, 403);
    // a token for both ports reaches 9000 either way
    const both = (await vm.createAuthToken({ allowedPorts: [8080, 9000] })).token;
    assert.equal(
      json(await request('/', { host: host(), 'x-capsule-auth': both, 'x-capsule-port': '9000' })).port,
      9000,
    );
    assert.equal(json(await request('/', { host: host(9000), 'x-capsule-auth': both })).port, 9000);
    // ranges (inclusive) and all ports; a token with only a range does not also open 8080
    const ranged = await vm.createAuthToken({ allowedPortRanges: [{ start: 8500, end: 9000 }] });
    assert.deepEqual([ranged.allowedPorts, ranged.allowedPortRanges], [[], [{ start: 8500, end: 9000 }]]);
    assert.equal(json(await request('/', { host: host(9000), 'x-capsule-auth': ranged.token })).port, 9000);
    assert.equal((await request('/', { host: host(), 'x-capsule-auth': ranged.token })).status, 403);
    const all = (await vm.createAuthToken({ allPorts: true })).token;
    assert.equal(json(await request('/', { host: host(9000), 'x-capsule-auth': all })).port, 9000);
    const backwards = await server().api('POST', `/v1/microvms/${vm.id}/auth-tokens`, {
      allowedPortRanges: [{ start: 9000, end: 8000 }],
    });
    assert.equal(backwards.status, 400);
  });

  test('no, bad, expired, foreign credentials: 401, and another tenant gets 404', async () => {
    assert.equal((await request('/', { host: host() })).status, 401);
    assert.equal((await request('/', { host: host(), 'x-capsule-auth': 'cat_forged.signature' })).status, 401);
    const short = (await vm.createAuthToken({ ttlSeconds: 1 })).token;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await request('/', { host: host(), 'x-capsule-auth': short })).status, 401);
    const tampered = (await vm.createAuthToken()).token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    assert.equal((await request('/', { host: host(), 'x-capsule-auth': tampered })).status, 401);
    const tenant = await server().capsule.tenants.create({ name: 'endpoint-other' });
    const { key } = await server().capsule.tenants.createApiKey(tenant.id);
    const foreign = await request('/', { host: host(), 'x-capsule-auth': key });
    assert.equal(foreign.status, 404, foreign.body.toString());
    const other = await new Capsule({ baseUrl: server().url, apiKey: key }).microvms
      .get(vm.id)
      .catch((err: Error) => err);
    assert.ok(other instanceof Error);
    assert.equal(
      (
        await request(
          `/v1/microvms/${vm.id}/auth-tokens`,
          { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          Buffer.from('{}'),
        )
      ).status,
      404,
    );
    assert.equal(
      (
        await request(
          `/v1/microvms/${vm.id}/auth-tokens`,
          { authorization: `Bearer ${server().adminKey}`, 'content-type': 'application/json' },
          Buffer.from('{"ttlSeconds":3601}'),
        )
      ).status,
      400,
    );
  });

  test('the /v1 proxy path with the API key; nothing listening is 502 PORT_UNREACHABLE', async () => {
    const answer = await request(`/v1/microvms/${vm.id}/proxy/9000/some/path?q=2`, {
      authorization: `Bearer ${server().adminKey}`,
    });
    assert.equal(answer.status, 200);
    const seen = json(answer) as { port: number; path: string; headers: Record<string, string> };
    assert.deepEqual([seen.port, seen.path], [9000, '/some/path?q=2']);
    assert.equal(seen.headers.authorization, undefined, 'the API key never reaches the app');
    const closed = await request(`/v1/microvms/${vm.id}/proxy/7777/`, { authorization: `Bearer ${server().adminKey}` });
    assert.equal(closed.status, 502);
    assert.equal(JSON.parse(closed.body.toString()).error.code, 'PORT_UNREACHABLE');
  });

  test('bodies stream both ways: 32 MiB up, 32 MiB down, bytes intact', async () => {
    const { token } = await vm.createAuthToken();
    const chunk = Buffer.alloc(1 << 20);
    const expected = createHash('sha256');
    const upload = async function* (): AsyncGenerator<Buffer> {
      for (let i = 0; i < 32; i++) {
        chunk.fill(i * 7);
        expected.update(chunk);
        yield Buffer.from(chunk);
      }
    };
    const up = await request('/upload', { host: host(), 'x-capsule-auth': token }, upload);
    assert.deepEqual(json(up), { bytes: 32 << 20, sha256: expected.digest('hex') });
    const down = await request('/big?mib=32', { host: host(), 'x-capsule-auth': token });
    assert.equal(down.body.length, 32 << 20);
    const want = createHash('sha256');
    for (let i = 0; i < 32 * 16; i++) want.update(Buffer.alloc(65536, i % 251));
    assert.equal(createHash('sha256').update(down.body).digest('hex'), want.digest('hex'));
  });

  test('an Upgrade (WebSocket handshake) becomes a raw two-way stream', async () => {
    const { token } = await vm.createAuthToken();
    const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: apiPort,
        path: '/ws',
        headers: { host: host(), 'x-capsule-auth': token, connection: 'Upgrade', upgrade: 'echo' },
      });
      req.on('upgrade', (res, s) =>
        res.statusCode === 101 ? resolve(s) : reject(new Error(`status ${res.statusCode}`)),
      );
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    const echoed = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (c) => {
        got += c;
        if (got.length >= 11) resolve(got);
      });
      socket.write('ping-pong-1');
    });
    assert.equal(echoed, 'ping-pong-1');
    socket.destroy();
  });

  test('a request to a SUSPENDED VM resumes it (auto-resume) and is served', async () => {
    await vm.suspend();
    const { token } = await vm.createAuthToken();
    const answer = await request('/after-suspend', { host: host(), 'x-capsule-auth': token });
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal((json(answer) as { path: string }).path, '/after-suspend');
    assert.equal((await vm.refresh()).state, 'RUNNING');
  });
});

// Fuzz: 1,200 generated requests across every route — malformed JSON, wrong types, unknown fields,
// oversized bodies, bad ids, paths with `..` or NUL, missing/garbage keys and tokens. None may be a
// 500, the server stays up, and a VM that was running before is untouched after.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { prng } from '../support/prng.js';
import { useTestServer } from './helpers.js';

const REQUESTS = Number(process.env.CAPSULE_FUZZ_REQUESTS ?? 1200);
const SEED = Number(process.env.CAPSULE_FUZZ_SEED ?? Date.now() % 2 ** 31);

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

function generator(random: () => number, vmId: string, adminKey: string): () => Sent {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const junk = (): string =>
    pick([
      '',
      'x',
      '..',
      '%00',
      '%2e%2e',
      'mvm-',
      'mvm-aaaaaaaaaaaaaaaa',
      'mvm-AAAAAAAAAAAAAAAA',
      'é✓',
      '%',
      '%zz',
      'a'.repeat(300),
      '../../etc',
      'null',
      '0',
      '-1',
      '1e309',
    ]);
  const id = (): string =>
    pick([
      vmId,
      junk(),
      'mvm-' +
        'abcdefghijklmnop'
          .split('')
          .sort(() => random() - 0.5)
          .join(''),
      encodeURIComponent(vmId + '/..'),
    ]);
  const guestPath = (): string =>
    pick([
      '/',
      '/tmp',
      '/tmp/fuzz-' + Math.floor(random() * 1000),
      '/root/../etc/passwd',
      '/tmp/\0x',
      'relative',
      '',
      '/' + 'p'.repeat(5000),
      '/proc/self/status',
      '/dev/null',
      '/tmp/%00',
      '/etc',
    ]);
  const value = (): unknown =>
    pick<() => unknown>([
      () => Math.floor(random() * 1e6) - 5e5,
      () => random() * 1e308,
      () => junk(),
      () => null,
      () => true,
      () => [],
      () => ({}),
      () => [junk(), junk()],
      () => ({ nested: { deeper: [1, 'two', { three: null }] } }),
      () => 'x'.repeat(Math.floor(random() * 5000)),
    ])();
  const object = (fields: string[]): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const field of fields) if (random() < 0.6) out[field] = value();
    if (random() < 0.3) out[junk() || 'extra'] = value();
    return out;
  };
  const routes: Array<[string, () => string, string[]]> = [
    [
      'POST',
      () => '/v1/microvms',
      [
        'imageName',
        'vcpuCount',
        'memoryMib',
        'env',
        'metadata',
        'idlePolicy',
        'maximumDurationSeconds',
        'network',
        'runHookPayload',
      ],
    ],
    ['GET', () => `/v1/microvms?state=${junk()}&limit=${junk()}&nextToken=${junk()}&metadata.${junk()}=${junk()}`, []],
    ['GET', () => `/v1/microvms/${id()}`, []],
    ['POST', () => `/v1/microvms/${junk() || 'x'}/suspend`, []],
    ['POST', () => `/v1/microvms/${junk() || 'x'}/resume`, []],
    ['DELETE', () => `/v1/microvms/${junk() || 'x'}`, []],
    ['POST', () => `/v1/microvms/${id()}/exec`, ['command', 'cwd', 'env', 'stdin', 'timeoutMs', 'background']],
    ['GET', () => `/v1/microvms/${id()}/files?path=${encodeURIComponent(guestPath())}`, []],
    ['PUT', () => `/v1/microvms/${id()}/files?path=${encodeURIComponent(pick(['/tmp/fuzz-put', guestPath()]))}`, []],
    [
      'DELETE',
      () => `/v1/microvms/${id()}/files?path=${encodeURIComponent(pick(['/tmp/fuzz-missing', '/tmp/../root']))}`,
      [],
    ],
    ['GET', () => `/v1/microvms/${id()}/files/list?path=${encodeURIComponent(guestPath())}`, []],
    ['GET', () => `/v1/microvms/${id()}/files/stat?path=${encodeURIComponent(guestPath())}`, []],
    [
      'POST',
      () => `/v1/microvms/${id()}/files/mkdir?path=${encodeURIComponent(pick(['/tmp/fuzz-dir', guestPath()]))}`,
      [],
    ],
    ['POST', () => `/v1/microvms/${id()}/auth-tokens`, ['allowedPorts', 'ttlSeconds']],
    ['GET', () => `/v1/microvms/${id()}/proxy/${pick(['8080', '0', '70000', 'abc', '22'])}/${junk()}`, []],
    ['POST', () => '/v1/tenants', ['name', 'quotas']],
    ['GET', () => `/v1/tenants/${junk() || 'x'}`, []],
    ['PATCH', () => `/v1/tenants/${junk() || 'x'}/quotas`, ['maxRunningMicroVMs', 'maxVcpus', 'maxMemoryMib']],
    ['POST', () => `/v1/tenants/${junk() || 'x'}/api-keys`, ['name']],
    [
      pick(['GET', 'PUT', 'PATCH', 'OPTIONS']),
      () => pick(['/', '/v1', '/v1/nothing', '/healthz', '/metrics', '/v1/openapi.json', `/v1/microvms/${id()}/nope`]),
      [],
    ],
  ];
  return () => {
    const [method, path, fields] = pick(routes);
    const headers: Record<string, string> = {};
    const auth = random();
    if (auth < 0.75) headers.authorization = `Bearer ${adminKey}`;
    else if (auth < 0.85)
      headers.authorization = pick([
        'Bearer',
        'Bearer cap_' + randomBytes(8).toString('hex'),
        'Basic Zm9vOmJhcg==',
        'Bearer ' + 'k'.repeat(5000),
      ]);
    if (random() < 0.2)
      headers['x-capsule-auth'] = pick([
        'cat_x.y',
        'cat_' + randomBytes(30).toString('base64url') + '.sig',
        adminKey,
        '',
      ]);
    let body: Buffer | undefined;
    const shape = random();
    if (fields.length > 0 || shape < 0.2) {
      headers['content-type'] =
        random() < 0.9
          ? 'application/json'
          : pick(['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']);
      if (shape < 0.55) body = Buffer.from(JSON.stringify(object(fields)));
      else if (shape < 0.7)
        body = Buffer.from(
          pick([
            '{',
            '{"a":',
            '[1,2',
            'nul',
            '"\\ud800"',
            '{"imageName":"base",}',
            '\u0000',
            '{"__proto__":{"x":1}}',
            '{"constructor":{"prototype":{}}}',
          ]),
        );
      else if (shape < 0.8) body = Buffer.from(JSON.stringify(value()));
      else if (shape < 0.83)
        body = Buffer.alloc(1024 * 1024 + 1 + Math.floor(random() * 1000), 0x20); // over the 1 MiB JSON limit
      else body = randomBytes(Math.floor(random() * 2000));
    }
    return { method, path: path(), headers, body };
  };
}

function send(port: number, req: Sent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // bytes a client cannot put in a request line raw go percent-encoded
    const path = req.path.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
    const r = http.request({ host: '127.0.0.1', port, method: req.method, path, headers: req.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body.length < 4096 ? (body += c) : undefined));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    // the server may answer 413 and close before reading an oversized body: that is not a failure
    r.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? resolve({ status: 413, body: '' }) : reject(err),
    );
    r.end(req.body);
  });
}

describe('fuzz', () => {
  const server = useTestServer();

  const title = `${REQUESTS} generated requests: never a 500, the server stays up, the running VM is unharmed`;
  test(`${title} (seed ${SEED})`, async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.files.write('/root/marker', 'intact');
    await vm.execBackground(['sleep', '100000']);
    const port = Number(new URL(server().url).port);
    const next = generator(prng(SEED), vm.id, server().adminKey);
    const statuses = new Map<number, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const req = next();
      // the VM under test may be used, never stopped or suspended by the fuzzer
      if (
        req.path.includes(vm.id) &&
        ((req.method === 'DELETE' && !req.path.includes('/files')) || /\/(suspend|resume)$/.test(req.path))
      )
        continue;
      const { status, body } = await send(port, req);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.notEqual(
        status,
        500,
        `#${i} ${req.method} ${req.path.slice(0, 200)} → 500 ${body.slice(0, 300)} (seed ${SEED})`,
      );
      if (status >= 400 && body)
        assert.doesNotThrow(
          () => JSON.parse(body).error.code,
          `#${i} ${req.method} ${req.path.slice(0, 100)}: error body is not the envelope: ${body.slice(0, 200)}`,
        );
    }
    const health = await fetch(`${server().url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await vm.refresh()).state, 'RUNNING');
    assert.equal(await vm.files.readText('/root/marker'), 'intact');
    assert.equal((await vm.exec(['pgrep', '-x', 'sleep'])).exitCode, 0, 'its processes still run');
    // most requests must reach validation rather than all bouncing off one check
    assert.ok((statuses.get(400) ?? 0) > REQUESTS / 10, `status mix: ${JSON.stringify([...statuses])}`);
    assert.ok(
      (statuses.get(404) ?? 0) > 0 && (statuses.get(401) ?? 0) > 0,
      `status mix: ${JSON.stringify([...statuses])}`,
    );
    await vm.terminate();
  });
});

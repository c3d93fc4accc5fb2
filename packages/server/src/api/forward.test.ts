// Which requests go to another host: only a caller's own VM on a registered other host, never the record
// itself, never a request already forwarded once, never with one host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sampleRecord } from '../../../../tests/support/store-backends.js';
import type { HostRecord } from '../store/hosts.js';
import type { ImageVersionRecord } from '../store/types.js';
import { hashKey } from './auth.js';
import { Forwarder } from './forward.js';

const host = (id: string): HostRecord => ({
  id,
  state: 'ready',
  advertiseUrl: `http://${id}.internal:7070`,
  capacity: { vcpus: 2, memoryMib: 4096, diskMib: 10_000, accelerator: 'tcg', qemuVersion: '10.0.2' },
  registeredAt: '2026-12-04T10:00:00.000Z',
  heartbeatAt: '2026-12-04T10:00:00.000Z',
  leaseExpiresAt: '2099-01-01T00:00:00.000Z',
  downCount: 0,
  ready: [],
});

/** A server among `hosts`: h1, or (`api`) a server that runs no VM; `down`: ids of hosts down, or `id=state`. */
function forwarder(hosts: string[], usedMib: Record<string, number> = {}, down: string[] = [], api = false): Forwarder {
  const suspendedOn = (id: string, hostId: string, suspendedBlob: string | null) =>
    sampleRecord(id, { tenantId: 'acme', hostId, state: 'SUSPENDED', suspendedBlob });
  const records = new Map([
    ['mvm-moving', suspendedOn('mvm-moving', 'h2', 'suspended/mvm-moving/1')],
    ['mvm-stuck', suspendedOn('mvm-stuck', 'h2', null)],
    ['mvm-there', sampleRecord('mvm-there', { tenantId: 'acme', hostId: 'h2' })],
    ['mvm-here', sampleRecord('mvm-here', { tenantId: 'acme', hostId: 'h1' })],
    ['mvm-old', sampleRecord('mvm-old', { tenantId: 'acme', hostId: null })],
    ['mvm-gone-host', sampleRecord('mvm-gone-host', { tenantId: 'acme', hostId: 'h9' })],
  ]);
  const keys = new Map([
    [hashKey('cap_acme'), { id: 'k1', tenantId: 'acme', isAdmin: false }],
    [hashKey('cap_other'), { id: 'k2', tenantId: 'other', isAdmin: false }],
  ]);
  return new Forwarder(
    {
      getMicroVM: async (id) => records.get(id) ?? null,
      listHosts: async () =>
        hosts.map((id) => {
          const marked = down.map((d) => d.split('=')).find(([name]) => name === id);
          return { ...host(id), state: marked ? ((marked[1] ?? 'down') as HostRecord['state']) : 'ready' };
        }),
      findApiKey: async (hash) => keys.get(hash) ?? null,
      hostUsage: async () =>
        new Map(Object.entries(usedMib).map(([id, memoryMib]) => [id, { vcpus: 1, memoryMib, microvms: 1 }])),
      getImageVersion: async (tenantId, name, version) =>
        tenantId === 'acme' && name === 'app' && version === 1
          ? ({ tenantId, name, version, buildHostId: 'h2' } as ImageVersionRecord)
          : null,
    },
    api ? 'api1' : 'h1',
    (request) => /^(mvm-[a-z]+)\.localhost/.exec(request.headers.host ?? '')?.[1] ?? null,
    null,
    !api,
  );
}

/** A request with no body (a launch's is read to place it). */
const req = (method: string, url: string, headers: Record<string, string> = {}) =>
  ({
    method,
    url,
    headers: { authorization: 'Bearer cap_acme', ...headers },
    async *[Symbol.asyncIterator]() {},
  }) as unknown as http.IncomingMessage;

test("a caller's request for its VM on another host goes there, path and query kept", async () => {
  const to = await forwarder(['h1', 'h2']).target(req('POST', '/v1/microvms/mvm-there/exec?x=1'));
  assert.deepEqual(to && [to.hostId, to.url.href], ['h2', 'http://h2.internal:7070/v1/microvms/mvm-there/exec?x=1']);
  const del = await forwarder(['h1', 'h2']).target(req('DELETE', '/v1/microvms/mvm-there'));
  assert.equal(del?.hostId, 'h2');
});

test('answered here: its own or older VMs, the record itself, a forwarded request, a stranger, one host', async () => {
  const two = forwarder(['h1', 'h2']);
  for (const request of [
    req('POST', '/v1/microvms/mvm-here/exec'),
    req('POST', '/v1/microvms/mvm-old/exec'),
    req('POST', '/v1/microvms/mvm-gone-host/exec'), // its host is not registered
    req('POST', '/v1/microvms/mvm-missing/exec'),
    req('GET', '/v1/microvms/mvm-there'),
    req('POST', '/v1/microvms/mvm-there/exec', { 'x-capsule-forwarded-by': 'h3' }),
    req('POST', '/v1/microvms/mvm-there/exec', { authorization: 'Bearer cap_other' }),
    req('POST', '/v1/microvms/mvm-there/exec', { authorization: 'Bearer cap_wrong' }),
    req('POST', '/v1/microvms/%E0%A4%A/exec'),
    req('GET', '/v1/images'),
  ])
    assert.equal(
      await two.target(request),
      null,
      `${request.method} ${request.url} ${JSON.stringify(request.headers)}`,
    );
  assert.equal(await forwarder(['h1']).target(req('POST', '/v1/microvms/mvm-there/exec')), null);
});

test('a launch goes to the hosts in turn, most memory free first, this one too; here with one host', async () => {
  const launch = (headers: Record<string, string> = {}) => req('POST', '/v1/microvms', headers);
  const toH2 = await forwarder(['h1', 'h2'], { h1: 2048, h2: 512 }).target(launch());
  assert.deepEqual(toH2 && [toH2.hostId, toH2.url.href], ['h2', 'http://h2.internal:7070/v1/microvms']);
  assert.deepEqual(
    toH2?.next?.map((h) => h.hostId),
    ['h1'],
    'then this host, if h2 has no room',
  );
  const here = await forwarder(['h1', 'h2'], { h1: 512, h2: 2048 }).target(launch());
  assert.deepEqual([here?.hostId, here?.next?.map((h) => h.hostId)], ['h1', ['h2']]);
  assert.equal(await forwarder(['h1', 'h2'], { h1: 2048 }).target(launch({ 'x-capsule-forwarded-by': 'h3' })), null);
  assert.equal(await forwarder(['h1', 'h2'], { h1: 2048 }).target(launch({ authorization: 'Bearer cap_wrong' })), null);
  assert.equal(await forwarder(['h1'], { h1: 2048 }).target(launch()), null);
});

test('an endpoint request for a VM on another host goes there whoever asks (its token is checked there)', async () => {
  const endpoint = (vm: string) => req('GET', '/app?x=1', { host: `${vm}.localhost:7070`, authorization: '' });
  const to = await forwarder(['h1', 'h2']).target(endpoint('mvm-there'));
  assert.deepEqual(to && [to.hostId, to.url.href], ['h2', 'http://h2.internal:7070/app?x=1']);
  assert.equal(await forwarder(['h1', 'h2']).target(endpoint('mvm-here')), null);
  assert.equal(await forwarder(['h1', 'h2']).target(endpoint('mvm-missing')), null);
  assert.equal(await forwarder(['h1']).target(endpoint('mvm-there')), null);
  // by host name, a POST to the app's /v1/microvms is the app's, never a launch
  const appPost = req('POST', '/v1/microvms', { host: 'mvm-here.localhost:7070' });
  assert.equal(await forwarder(['h1', 'h2'], { h1: 4096 }).target(appPost), null);
});

/** A fake host: answers every request with `status`, `body` and `headers`, and keeps what it was sent. */
async function fakeHost(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ url: string; got: string[]; close(): void }> {
  const got: string[] = [];
  const server = http.createServer(async (request, response) => {
    let text = '';
    for await (const chunk of request) text += chunk;
    got.push(`${request.headers['x-capsule-forwarded-by']} ${text}`);
    response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, close: () => server.close() };
}

/**
 * A server (h1) placing launches over `urls` (h1's own included), with `usedMib` of each taken and `ready` what each
 * has ready; returns a launch through it: its status.
 */
async function placingFront(
  t: { after(fn: () => void): void },
  urls: Record<string, string>,
  usedMib: Record<string, number>,
  ready: Record<string, string[]> = {},
): Promise<(body: string) => Promise<number>> {
  const forwarder = new Forwarder(
    {
      getMicroVM: async () => null,
      listHosts: async () =>
        Object.keys(urls).map((id) => ({ ...host(id), advertiseUrl: urls[id], ready: ready[id] ?? [] })),
      findApiKey: async (hash) => (hash === hashKey('cap_acme') ? { id: 'k', tenantId: 'acme', isAdmin: false } : null),
      hostUsage: async () =>
        new Map(Object.entries(usedMib).map(([id, memoryMib]) => [id, { vcpus: 1, memoryMib, microvms: 1 }])),
      getImageVersion: async () => null,
    },
    'h1',
  );
  const front = http.createServer(async (request, response) => {
    const target = await forwarder.target(request);
    assert.ok(target, 'placed elsewhere');
    forwarder.forward(request, response, target);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  t.after(() => front.close());
  return async (body) => {
    const answer = await fetch(`http://127.0.0.1:${(front.address() as AddressInfo).port}/v1/microvms`, {
      method: 'POST',
      headers: { authorization: 'Bearer cap_acme', 'content-type': 'application/json' },
      body,
    });
    await answer.text();
    return answer.status;
  };
}

test('a launch a host has no room for goes on to the next host; any other answer is the caller’s', async (t) => {
  const full = { error: { code: 'HOST_FULL', message: 'host h2 has no room' } };
  const awsFull = { __type: 'InsufficientCapacityException', message: 'host h2 has no room' };
  const cases: Array<[string, [number, unknown, Record<string, string>?] | null, [number, unknown], number, number]> = [
    ['h2 full: h3 takes it', [503, full], [201, { id: 'mvm-new' }], 201, 1],
    ['h2 full (the AWS API): h3 takes it', [500, awsFull, { 'x-capsule-error-code': 'HOST_FULL' }], [201, {}], 201, 1],
    ['h2 fails (the AWS API): its answer', [500, { __type: 'InternalServerException' }], [201, {}], 500, 0],
    ['h2 takes no connection: h3 takes it', null, [201, { id: 'mvm-new' }], 201, 1],
    ['h2 draining: h3 takes it', [503, { error: { code: 'HOST_DRAINING' } }], [201, { id: 'mvm-new' }], 201, 1],
    ['both full: the last refusal', [503, full], [503, full], 503, 1],
    [
      'h2 fails otherwise: its answer, h3 never asked',
      [503, { error: { code: 'STORE_UNAVAILABLE' } }],
      [201, {}],
      503,
      0,
    ],
  ];
  for (const [what, h2Answer, h3Answer, status, h3Asked] of cases) {
    // this host (h1) is tried last, through its own URL: full too
    const [h1, h2, h3] = [
      await fakeHost(503, full),
      await fakeHost(...(h2Answer ?? [500, {}])),
      await fakeHost(...h3Answer),
    ];
    t.after(() => {
      for (const h of [h1, h2, h3]) h.close();
    });
    const urls = { h1: h1.url, h2: h2Answer ? h2.url : 'http://127.0.0.1:1', h3: h3.url };
    const launch = await placingFront(t, urls, { h1: 3000, h2: 0, h3: 1000 });
    assert.equal(await launch('{"imageName":"base"}'), status, what);
    assert.deepEqual(h2.got, h2Answer ? ['h1 {"imageName":"base"}'] : [], what);
    assert.equal(h3.got.length, h3Asked, what);
    if (h3Asked) assert.deepEqual(h3.got, ['h1 {"imageName":"base"}'], what);
  }
});

test('a suspended VM whose host is down and whose state is shared resumes where placement says', async () => {
  // h2 is down: h3 has the most memory free; a resume is sent on past a full h3, any other request is not
  const resume = await forwarder(['h1', 'h2', 'h3'], { h1: 2048 }, ['h2']).target(
    req('POST', '/v1/microvms/mvm-moving/resume'),
  );
  assert.deepEqual(resume && [resume.hostId, resume.url.href], [
    'h3',
    'http://h3.internal:7070/v1/microvms/mvm-moving/resume',
  ]);
  assert.deepEqual(
    resume?.next?.map((h) => h.hostId),
    ['h1'],
  );
  const exec = await forwarder(['h1', 'h2', 'h3'], { h1: 2048 }, ['h2']).target(
    req('POST', '/v1/microvms/mvm-moving/exec'),
  );
  assert.deepEqual(exec && [exec.hostId, exec.next], ['h3', undefined]);
  // any other request is answered here when this host is the pick (an auto-resume here)
  assert.equal(
    await forwarder(['h1', 'h2', 'h3'], { h3: 2048 }, ['h2']).target(req('POST', '/v1/microvms/mvm-moving/exec')),
    null,
  );
  // its host up, it goes there; its state only on its down host, it is answered here (502, saying so)
  const home = await forwarder(['h1', 'h2', 'h3'], { h1: 2048 }).target(req('POST', '/v1/microvms/mvm-moving/resume'));
  assert.equal(home?.hostId, 'h2');
  const stuck = await forwarder(['h1', 'h2', 'h3'], { h1: 2048 }, ['h2']).target(
    req('POST', '/v1/microvms/mvm-stuck/resume'),
  );
  assert.equal(stuck, null);
});

test('a server that runs no VM sends every MicroVM, launch and build to the hosts, and never runs one', async () => {
  const api = forwarder(['h2'], {}, [], true);
  assert.equal((await api.target(req('POST', '/v1/microvms/mvm-there/exec')))?.hostId, 'h2', 'even with one host');
  const launch = await api.target(req('POST', '/v1/microvms'));
  assert.deepEqual([launch?.hostId, launch?.next?.length], ['h2', 0]);
  const build = await api.target(req('POST', '/v1/images?name=app'));
  assert.deepEqual([build?.hostId, build?.next], ['h2', undefined], 'an upload streamed to one host');
  assert.equal(await api.target(req('GET', '/v1/microvms/mvm-there')), null, 'a record is read here');
  assert.equal(await api.target(req('GET', '/v1/images')), null);
  // no host ready: refused here, never run here
  const none = forwarder(['h2'], {}, ['h2'], true);
  for (const [method, url] of [
    ['POST', '/v1/microvms'],
    ['POST', '/v1/images'],
    ['POST', '/v1/microvms/mvm-moving/resume'],
  ])
    await assert.rejects(none.target(req(method, url)), { code: 'HOST_FULL' }, `${method} ${url}`);
  // a server that runs VMs builds its own
  assert.equal(await forwarder(['h1', 'h2']).target(req('POST', '/v1/images')), null);
});

test("a build's log is read on the host that builds it", async () => {
  const to = await forwarder(['h1', 'h2']).target(req('GET', '/v1/images/app/versions/1/build?offset=10'));
  assert.equal(to?.url.href, 'http://h2.internal:7070/v1/images/app/versions/1/build?offset=10');
  assert.equal(await forwarder(['h1', 'h2']).target(req('GET', '/v1/images/app/versions/2/build')), null);
  const stranger = req('GET', '/v1/images/app/versions/1/build', { authorization: 'Bearer cap_other' });
  assert.equal(await forwarder(['h1', 'h2']).target(stranger), null);
  assert.equal(await forwarder(['h1', 'h2'], {}, ['h2']).target(req('GET', '/v1/images/app/versions/1/build')), null);
});

test("the AWS API's MicroVM changes go to the VM's host, its launches and builds are placed; reads stay", async () => {
  const aws = (method: string, url: string) => req(method, url, { authorization: 'AWS4-HMAC-SHA256 …' });
  const h1 = forwarder(['h1', 'h2']);
  for (const [method, url] of [
    ['DELETE', '/2025-09-09/microvms/mvm-there'],
    ['POST', '/2025-09-09/microvms/mvm-there/suspend'],
    ['POST', '/aws/2025-09-09/microvms/mvm-there/resume'],
  ])
    assert.equal((await h1.target(aws(method, url)))?.hostId, 'h2', `${method} ${url}`);
  for (const [method, url] of [
    ['GET', '/2025-09-09/microvms/mvm-there'],
    ['POST', '/2025-09-09/microvms/mvm-there/auth-token'],
    ['DELETE', '/2025-09-09/microvms/mvm-here'],
    ['POST', '/2025-09-09/microvm-images'],
  ])
    assert.equal(await h1.target(aws(method, url)), null, `${method} ${url}`);
  assert.deepEqual((await h1.target(aws('POST', '/2025-09-09/microvms')))?.next?.length, 1, 'placed in turn');
  const api = forwarder(['h2'], {}, [], true);
  assert.equal((await api.target(aws('POST', '/2025-09-09/microvm-images')))?.hostId, 'h2');
  assert.equal((await api.target(aws('PUT', '/2025-09-09/microvm-images/app')))?.hostId, 'h2');
  assert.equal(await api.target(aws('PATCH', '/2025-09-09/microvm-images/app/versions/1')), null);
});

test('a launch goes first to a host that has its image ready, its body sent as it came', async (t) => {
  const [h1, h2, h3] = [await fakeHost(201, { id: 'a' }), await fakeHost(201, { id: 'b' }), await fakeHost(201, {})];
  t.after(() => {
    for (const h of [h1, h2, h3]) h.close();
  });
  const urls = { h1: h1.url, h2: h2.url, h3: h3.url };
  const launch = await placingFront(t, urls, { h1: 3000, h2: 0, h3: 1000 }, { h3: ['cached:acme/app'] });
  assert.equal(await launch('{"imageName":"app"}'), 201);
  assert.deepEqual([h1.got, h2.got, h3.got], [[], [], ['h1 {"imageName":"app"}']], 'h3 has its snapshot');
  assert.equal(await launch('{"imageName":"base"}'), 201);
  assert.deepEqual(h2.got, ['h1 {"imageName":"base"}'], 'none has it ready: the most memory free');
  assert.equal(await launch('not json'), 201);
  assert.deepEqual(h2.got.at(-1), 'h1 not json', 'sent on as it came: its host answers it');
});

test("a terminate of a down host's VM is answered where it arrives; a draining host's goes to that host", async () => {
  const awsDelete = { authorization: 'AWS4-HMAC-SHA256 Credential=x' };
  for (const down of [forwarder(['h1', 'h2'], {}, ['h2']), forwarder(['h1', 'h2'], {}, ['h2'], true)])
    for (const request of [
      req('DELETE', '/v1/microvms/mvm-there'),
      req('DELETE', '/v1/microvms/mvm-moving'),
      req('DELETE', '/v1/microvms/mvm-stuck'),
      req('DELETE', '/2025-09-09/microvms/mvm-moving', awsDelete),
    ])
      assert.equal(await down.target(request), null, request.url);
  // its other work still waits for its host, or moves with its shared state
  assert.equal(
    (await forwarder(['h1', 'h2'], {}, ['h2']).target(req('POST', '/v1/microvms/mvm-there/exec')))?.hostId,
    'h2',
  );
  const draining = forwarder(['h1', 'h2', 'h3'], {}, ['h2=draining']);
  for (const id of ['mvm-there', 'mvm-moving', 'mvm-stuck'])
    assert.equal((await draining.target(req('DELETE', `/v1/microvms/${id}`)))?.hostId, 'h2', id);
});

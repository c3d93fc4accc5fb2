// Tenants: the admin key creates tenants and keys; every resource belongs to one tenant (another
// tenant's ids answer 404); quotas on running MicroVMs, vCPUs and memory answer 429 with what was exceeded.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Capsule, QuotaExceededError, type MicroVM } from '@capsule/sdk';
import { errorOf, runCli, useTestServer, withTestServer } from './helpers.js';

describe('tenants', () => {
  const server = useTestServer();

  async function tenantClient(name: string, quotas = {}): Promise<{ id: string; key: string; capsule: Capsule }> {
    const tenant = await server().capsule.tenants.create({ name, quotas });
    const { key } = await server().capsule.tenants.createApiKey(tenant.id, { name: `${name}-key` });
    return { id: tenant.id, key, capsule: new Capsule({ baseUrl: server().url, apiKey: key }) };
  }

  const as = (key: string, method: string, route: string, body?: unknown): Promise<Response> =>
    fetch(server().url + route, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  test('another tenant cannot see or touch a MicroVM: every route answers 404', async () => {
    const a = await tenantClient('tenant-a');
    const b = await tenantClient('tenant-b');
    const vm = await a.capsule.microvms.run({ imageName: 'base', metadata: { owner: 'a' } });
    try {
      const routes: Array<[string, string, unknown?]> = [
        ['GET', `/v1/microvms/${vm.id}`],
        ['POST', `/v1/microvms/${vm.id}/suspend`],
        ['POST', `/v1/microvms/${vm.id}/resume`],
        ['POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }],
        ['GET', `/v1/microvms/${vm.id}/files?path=/etc/hostname`],
        ['GET', `/v1/microvms/${vm.id}/files/list?path=/`],
        ['GET', `/v1/microvms/${vm.id}/files/stat?path=/`],
        ['DELETE', `/v1/microvms/${vm.id}/files?path=/etc/hostname`],
        ['POST', `/v1/microvms/${vm.id}/files/mkdir?path=/tmp/b-was-here`],
        ['POST', `/v1/microvms/${vm.id}/auth-tokens`, {}],
        ['GET', `/v1/microvms/${vm.id}/proxy/8080/`],
        ['DELETE', `/v1/microvms/${vm.id}`],
      ];
      for (const [method, route, body] of routes) {
        const response = await as(b.key, method, route, body);
        const text = await response.text();
        assert.equal(response.status, 404, `${method} ${route}: ${text}`);
        assert.equal(JSON.parse(text).error.code, 'NOT_FOUND');
        const headers = JSON.stringify([...response.headers]);
        for (const secret of ['tenant-a', a.id])
          assert.ok(
            !text.includes(secret) && !headers.includes(secret),
            `${method} ${route} leaks the owner: ${text} ${headers}`,
          );
      }
      // a raw upload with the other tenant's key is refused too, and writes nothing
      const upload = await fetch(`${server().url}/v1/microvms/${vm.id}/files?path=/tmp/b-upload`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${b.key}` },
        body: 'from b',
      });
      assert.equal(upload.status, 404);
      assert.equal((await vm.exec('ls /tmp/b-upload /tmp/b-was-here 2>/dev/null | wc -l')).stdout.trim(), '0');
      assert.deepEqual((await b.capsule.microvms.list()).microvms, []);
      assert.deepEqual((await b.capsule.microvms.list({ metadata: { owner: 'a' } })).microvms, []);
      // untouched, and still the owner's
      assert.equal((await vm.refresh()).state, 'RUNNING');
      assert.equal((await vm.exec('echo mine')).stdout, 'mine\n');
      assert.deepEqual(
        (await a.capsule.microvms.list()).microvms.map((m) => m.id),
        [vm.id],
      );
      assert.ok(
        !(await server().capsule.microvms.list()).microvms.some((m) => m.id === vm.id),
        "the admin's own tenant does not list it either",
      );
    } finally {
      await vm.terminate();
    }
  });

  test('keys: missing, malformed and unknown keys are 401; only the admin key manages tenants (403)', async () => {
    const c = await tenantClient('tenant-c');
    for (const authorization of [undefined, 'Bearer', 'Basic abc', 'Bearer cap_not-a-real-key']) {
      const response = await fetch(server().url + '/v1/microvms', { headers: authorization ? { authorization } : {} });
      assert.equal(response.status, 401, String(authorization));
      assert.equal((await errorOf(response)).code, 'UNAUTHORIZED');
    }
    for (const [method, route, body] of [
      ['POST', '/v1/tenants', { name: 'sneaky' }],
      ['GET', '/v1/tenants'],
      ['POST', `/v1/tenants/${c.id}/api-keys`, {}],
      ['PATCH', `/v1/tenants/${c.id}/quotas`, { maxVcpus: 1000 }],
    ] as const) {
      const response = await as(c.key, method, route, body);
      assert.equal(response.status, 403, `${method} ${route}`);
      assert.equal((await errorOf(response)).code, 'FORBIDDEN');
    }
    const duplicate = await errorOf(await server().api('POST', '/v1/tenants', { name: 'tenant-c' }));
    assert.deepEqual([duplicate.status, duplicate.code], [409, 'ALREADY_EXISTS']);
    const bad = await errorOf(await server().api('POST', '/v1/tenants', { name: 'Not A Name', extra: 1 }));
    assert.deepEqual([bad.status, bad.code], [400, 'VALIDATION_FAILED']);
    assert.equal((await errorOf(await server().api('POST', '/v1/tenants/ten-nope/api-keys', {}))).status, 404);
  });

  test(
    'quotas: running MicroVMs, vCPUs and memory; a suspended VM frees its share; 429 says what was ' + 'exceeded',
    async () => {
      const q = await tenantClient('tenant-q', { maxRunningMicroVMs: 1, maxVcpus: 2, maxMemoryMib: 1024 });
      const vms: MicroVM[] = [];
      try {
        vms.push(await q.capsule.microvms.run({ imageName: 'base' }));
        const second = await q.capsule.microvms.run({ imageName: 'base' }).catch((err: Error) => err);
        assert.ok(second instanceof QuotaExceededError, String(second));
        assert.deepEqual(second.details, { quota: 'maxRunningMicroVMs', limit: 1, used: 1, requested: 1 });
        const raw = await as(q.key, 'POST', '/v1/microvms', { imageName: 'base' });
        assert.equal(raw.status, 429);

        // suspended: holds no CPU or memory, so another may run — and then the first cannot resume
        await vms[0].suspend();
        vms.push(await q.capsule.microvms.run({ imageName: 'base' }));
        await assert.rejects(
          vms[0].resume(),
          (err: Error) => err instanceof QuotaExceededError && /maxRunningMicroVMs/.test(err.message),
        );
        assert.equal((await vms[0].refresh()).state, 'SUSPENDED', 'a refused resume leaves the VM as it was');
        await vms[1].terminate();
        assert.equal((await vms[0].resume()).state, 'RUNNING');
        await vms[0].terminate();

        const cpus = await q.capsule.microvms.run({ imageName: 'base', vcpuCount: 3 }).catch((err: Error) => err);
        assert.ok(
          cpus instanceof QuotaExceededError && (cpus.details as { quota: string }).quota === 'maxVcpus',
          String(cpus),
        );
        const memory = await q.capsule.microvms.run({ imageName: 'base', memoryMib: 2048 }).catch((err: Error) => err);
        assert.ok(
          memory instanceof QuotaExceededError && (memory.details as { quota: string }).quota === 'maxMemoryMib',
          String(memory),
        );

        // concurrent launches cannot overshoot: exactly one of three gets in
        const raced = await Promise.allSettled([0, 1, 2].map(() => q.capsule.microvms.run({ imageName: 'base' })));
        const won = raced.filter((r): r is PromiseFulfilledResult<MicroVM> => r.status === 'fulfilled');
        assert.equal(won.length, 1, raced.map((r) => r.status).join(','));
        vms.push(...won.map((r) => r.value));
      } finally {
        for (const vm of vms) if ((await vm.refresh()).state !== 'TERMINATED') await vm.terminate();
      }
    },
  );

  test('CLI: tenant create, key create, tenant quota; the new key works', async () => {
    const created = await runCli(server().url, server().adminKey, [
      'tenant',
      'create',
      'tenant-cli',
      '--max-microvms',
      '3',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const tenant = JSON.parse(created.stdout) as { id: string; quotas: { maxRunningMicroVMs: number } };
    assert.equal(tenant.quotas.maxRunningMicroVMs, 3);
    const key = await runCli(server().url, server().adminKey, ['key', 'create', '--tenant', tenant.id]);
    assert.equal(key.code, 0, key.stderr);
    assert.match(key.stdout, /^cap_\S+\n$/);
    const ls = await runCli(server().url, key.stdout.trim(), ['ls', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(JSON.parse(ls.stdout), []);
    const raised = await runCli(server().url, server().adminKey, [
      'tenant',
      'quota',
      tenant.id,
      '--max-vcpus',
      '7',
      '--json',
    ]);
    assert.equal(JSON.parse(raised.stdout).quotas.maxVcpus, 7);
    const forbidden = await runCli(server().url, key.stdout.trim(), ['tenant', 'ls']);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /FORBIDDEN/);
  });

  test('revoking a key stops it at once; the admin key is rotated, not revoked; only the admin revokes', async () => {
    const t = await tenantClient('tenant-revoke');
    assert.equal((await as(t.key, 'GET', '/v1/microvms')).status, 200);
    const keys = await server().capsule.tenants.listApiKeys(t.id);
    assert.deepEqual(
      keys.map((k) => k.name),
      ['tenant-revoke-key'],
    );
    assert.ok(!JSON.stringify(keys).includes(t.key), 'a listing never shows a key');
    assert.equal((await as(t.key, 'DELETE', `/v1/tenants/${t.id}/api-keys/${keys[0].id}`)).status, 403);
    await server().capsule.tenants.revokeApiKey(t.id, keys[0].id);
    assert.equal((await as(t.key, 'GET', '/v1/microvms')).status, 401, 'revoked at once');
    assert.equal(
      (await errorOf(await server().api('DELETE', `/v1/tenants/${t.id}/api-keys/${keys[0].id}`))).status,
      404,
    );
    assert.equal(
      (await errorOf(await server().api('DELETE', '/v1/tenants/default/api-keys/key-admin'))).code,
      'INVALID_STATE',
    );
    // the CLI: key ls, key revoke
    const { key: second } = await server().capsule.tenants.createApiKey(t.id, { name: 'cli' });
    const ls = await runCli(server().url, server().adminKey, ['key', 'ls', '--tenant', t.id, '--json']);
    const [cliKey] = JSON.parse(ls.stdout) as Array<{ id: string }>;
    const revoked = await runCli(server().url, server().adminKey, ['key', 'revoke', '--tenant', t.id, cliKey.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await as(second, 'GET', '/v1/microvms')).status, 401);
  });

  test('AWS-style access key pairs: shown once by key create --aws, kept encrypted, the default on disk', async () => {
    const t = await tenantClient('tenant-aws');
    const cli = await runCli(server().url, server().adminKey, ['key', 'create', '--tenant', t.id, '--aws']);
    assert.equal(cli.code, 0, cli.stderr);
    const [key, pairLine] = cli.stdout.trim().split('\n');
    assert.match(key, /^cap_\S+$/);
    const pair = JSON.parse(pairLine) as { accessKeyId: string; secretAccessKey: string };
    assert.match(pair.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
    assert.match(pair.secretAccessKey, /^[A-Za-z0-9_-]{40}$/);
    const plain = await server().capsule.tenants.createApiKey(t.id, { name: 'no-aws' });
    assert.equal(plain.aws, undefined, 'only when asked');
    // the default tenant's pair, 0600 beside admin-key; the server key that seals the secrets, 0600 too
    const defaultPair = JSON.parse(fs.readFileSync(path.join(server().dataDir, 'aws-credentials'), 'utf8'));
    assert.deepEqual(Object.keys(defaultPair).sort(), ['accessKeyId', 'secretAccessKey']);
    for (const f of ['aws-credentials', 'server-key'])
      assert.equal(fs.statSync(path.join(server().dataDir, f)).mode & 0o777, 0o600, f);
    // no secret in plain text in the database or its WAL
    const stored = ['capsule.db', 'capsule.db-wal']
      .map((f) => fs.readFileSync(path.join(server().dataDir, f)).toString('latin1'))
      .join('');
    assert.ok(stored.includes(pair.accessKeyId), 'the scan reads where the pairs are');
    for (const secret of [pair.secretAccessKey, defaultPair.secretAccessKey])
      assert.ok(!stored.includes(secret), 'a secret in plain text in the database');
    assert.ok(!JSON.stringify(await server().capsule.tenants.listApiKeys(t.id)).includes(pair.secretAccessKey));
  });

  test('the database and its WAL are readable by root alone', () => {
    for (const f of ['capsule.db', 'capsule.db-wal']) {
      const mode = fs.statSync(path.join(server().dataDir, f)).mode & 0o777;
      assert.equal(mode, 0o600, `${f} is ${mode.toString(8)}`);
    }
  });
});

test('admin-key rotate: the old admin key stops working at once, the new one is in the data dir', async () => {
  await withTestServer({}, async (server) => {
    const old = server.adminKey;
    const cli = await runCli(server.url, old, ['admin-key', 'rotate']);
    assert.equal(cli.code, 0, cli.stderr);
    const fresh = cli.stdout.trim();
    assert.match(fresh, /^cap_\S+$/);
    assert.equal(fs.readFileSync(path.join(server.dataDir, 'admin-key'), 'utf8').trim(), fresh);
    const get = (key: string): Promise<number> =>
      fetch(`${server.url}/v1/tenants`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
    assert.equal(await get(old), 401);
    assert.equal(await get(fresh), 200);
    assert.equal(fs.statSync(path.join(server.dataDir, 'admin-key')).mode & 0o777, 0o600);
  });
});

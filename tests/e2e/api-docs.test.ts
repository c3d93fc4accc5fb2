// /v1/openapi.json describes exactly the routes the server answers, with the schemas that validate
// them; /metrics reports MicroVMs by state, lifecycle latencies and exec outcomes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestServer } from './helpers.js';

interface OpenApi {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        security?: unknown[];
        'x-capsule-auth'?: string;
        requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
      }
    >
  >;
}

describe('OpenAPI and metrics', () => {
  const server = useTestServer();

  test('openapi.json lists every route, each answering as documented (401 without a key unless public)', async () => {
    const response = await fetch(`${server().url}/v1/openapi.json`);
    assert.equal(response.status, 200);
    const doc = (await response.json()) as OpenApi;
    assert.equal(doc.openapi, '3.1.0');
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
    );
    const names = operations.map(({ method, path }) => `${method} ${path}`);
    for (const expected of [
      'POST /v1/microvms',
      'GET /v1/microvms',
      'GET /v1/microvms/{id}',
      'DELETE /v1/microvms/{id}',
      'POST /v1/microvms/{id}/suspend',
      'POST /v1/microvms/{id}/resume',
      'POST /v1/microvms/{id}/exec',
      'GET /v1/microvms/{id}/files',
      'PUT /v1/microvms/{id}/files',
      'GET /v1/microvms/{id}/files/list',
      'POST /v1/tenants',
      'POST /v1/tenants/{id}/api-keys',
      'GET /healthz',
      'GET /metrics',
      'GET /v1/openapi.json',
      'GET /v1/microvms/{id}/exec/ws',
      'GET /v1/microvms/{id}/shell',
    ]) {
      assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
    }
    // the run request schema is the strict zod schema the handler validates with
    const run = doc.paths['/v1/microvms'].post.requestBody!.content['application/json'].schema;
    assert.equal(run.additionalProperties, false);
    assert.ok((run.required as string[]).includes('imageName'));
    assert.ok('idlePolicy' in (run.properties as object));
    // every documented operation exists: without a key it is 401 (or answers, if public) — never 404/405
    for (const { path, method, op } of operations) {
      const url = server().url + path.replace(/\{id\}/g, 'mvm-aaaaaaaaaaaaaaaa');
      const status = (await fetch(url, { method })).status;
      assert.ok(
        ['public', 'tenant', 'admin'].includes(op['x-capsule-auth'] ?? ''),
        `${method} ${path} declares its auth level`,
      );
      if (op.security?.length === 0) assert.equal(status, 200, `${method} ${path} is public`);
      else assert.equal(status, 401, `${method} ${path}`);
    }
  });

  test('metrics: MicroVMs by state, launch/suspend/resume histograms, exec outcomes; admin key only', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.exec('true');
    await vm.exec(['sh', '-c', 'kill -9 $$']);
    await vm.suspend();
    await vm.resume();
    const response = await server().api('GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^capsule_microvms\{state="RUNNING"\} 1$/m);
    assert.match(text, /^capsule_microvms\{state="SUSPENDED"\} 0$/m);
    assert.match(text, /^capsule_microvm_launch_seconds_count\{launched_from="(snapshot|boot)"\} 1$/m);
    assert.match(text, /^capsule_microvm_suspend_seconds_count 1$/m);
    assert.match(text, /^capsule_microvm_resume_seconds_bucket\{le="\+Inf"\} 1$/m);
    assert.match(text, /^capsule_execs_total\{outcome="exit"\} 1$/m);
    assert.match(text, /^capsule_execs_total\{outcome="signal"\} 1$/m);
    assert.match(
      text,
      /^capsule_http_requests_total\{method="POST",route="\/v1\/microvms\/:id\/exec",status="200"\} 2$/m,
    );
    await vm.terminate();

    const tenant = await server().capsule.tenants.create({ name: 'metrics-reader' });
    const { key } = await server().capsule.tenants.createApiKey(tenant.id);
    const forbidden = await fetch(`${server().url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(forbidden.status, 403);
  });
});

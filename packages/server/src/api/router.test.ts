import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { Router, type Route } from './router.js';

function route(method: string, pattern: string): Route {
  return { method, pattern, doc: { summary: pattern, responses: {} }, async handle() {} };
}

function router(): { router: Router; routes: Record<string, Route> } {
  const routes = {
    health: { ...route('GET', '/healthz'), public: true },
    list: route('GET', '/v1/microvms'),
    run: route('POST', '/v1/microvms'),
    get: route('GET', '/v1/microvms/:id'),
    terminate: route('DELETE', '/v1/microvms/:id'),
    exec: route('POST', '/v1/microvms/:id/exec'),
    file: route('GET', '/v1/microvms/:id/files/:name'),
  };
  const r = new Router();
  for (const x of Object.values(routes)) r.add(x);
  return { router: r, routes };
}

function assertCode(fn: () => unknown, code: ErrorCode, status: number, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CapsuleError, `expected a CapsuleError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('routes match by method and path; params are extracted', () => {
  const { router: r, routes } = router();
  assert.deepEqual(r.match('GET', '/healthz'), { route: routes.health, params: {} });
  assert.equal(r.match('GET', '/healthz').route.public, true);
  assert.deepEqual(r.match('GET', '/v1/microvms'), { route: routes.list, params: {} });
  assert.deepEqual(r.match('POST', '/v1/microvms'), { route: routes.run, params: {} });
  assert.deepEqual(r.match('GET', '/v1/microvms/mvm-123'), { route: routes.get, params: { id: 'mvm-123' } });
  assert.deepEqual(r.match('DELETE', '/v1/microvms/mvm-123'), { route: routes.terminate, params: { id: 'mvm-123' } });
  assert.deepEqual(r.match('POST', '/v1/microvms/mvm-123/exec'), { route: routes.exec, params: { id: 'mvm-123' } });
  assert.deepEqual(r.match('GET', '/v1/microvms/a/files/b.txt'), { route: routes.file, params: { id: 'a', name: 'b.txt' } });
});

test('params are URL-decoded', () => {
  const { router: r } = router();
  assert.deepEqual(r.match('GET', '/v1/microvms/a%20b').params, { id: 'a b' });
  assert.deepEqual(r.match('GET', '/v1/microvms/h%C3%A9llo').params, { id: 'héllo' });
  assert.deepEqual(r.match('GET', '/v1/microvms/x/files/dir%2Fname.txt').params, { id: 'x', name: 'dir/name.txt' }, 'an encoded slash stays inside one param');
  assert.deepEqual(r.match('GET', '/v1/microvms/%25').params, { id: '%' });
  assert.deepEqual(r.match('GET', '/v1/microvms/a+b').params, { id: 'a+b' }, '+ is not a space in a path');
  assert.deepEqual(r.match('GET', '/v1/microvms/%3A%3F%23').params, { id: ':?#' });
});

test('an unknown path is NOT_FOUND', () => {
  const { router: r } = router();
  for (const path of ['/', '/v1', '/v2/microvms', '/v1/microvms/', '/v1/microvms/a/b', '/v1/microvms/a/exec/x', '/v1/microvmsx', '/healthz/', 'v1/microvms', '']) {
    assertCode(() => r.match('GET', path), ErrorCode.NOT_FOUND, 404, /no route for GET/);
  }
  // Empty router.
  assertCode(() => new Router().match('GET', '/'), ErrorCode.NOT_FOUND, 404);
});

test('a known path with the wrong method is METHOD_NOT_ALLOWED', () => {
  const { router: r } = router();
  assertCode(() => r.match('PUT', '/v1/microvms'), ErrorCode.METHOD_NOT_ALLOWED, 405, /method PUT is not allowed on \/v1\/microvms/);
  assertCode(() => r.match('POST', '/v1/microvms/mvm-1'), ErrorCode.METHOD_NOT_ALLOWED, 405);
  assertCode(() => r.match('GET', '/v1/microvms/mvm-1/exec'), ErrorCode.METHOD_NOT_ALLOWED, 405);
  assertCode(() => r.match('POST', '/healthz'), ErrorCode.METHOD_NOT_ALLOWED, 405);
  // Methods are case-sensitive, as Node reports them upper-case.
  assertCode(() => r.match('get', '/healthz'), ErrorCode.METHOD_NOT_ALLOWED, 405);
});

test('a malformed percent-encoding in a param is BAD_REQUEST', () => {
  const { router: r } = router();
  for (const bad of ['%', '%zz', 'a%2', '%E0%A4%A', '%C3']) {
    assertCode(() => r.match('GET', `/v1/microvms/${bad}`), ErrorCode.BAD_REQUEST, 400, /malformed path parameter id/);
  }
  assertCode(() => r.match('GET', '/v1/microvms/ok/files/%ff'), ErrorCode.BAD_REQUEST, 400, /malformed path parameter name/);
  // The method is checked first: a malformed param on a path with no such method is still 405.
  assertCode(() => r.match('PUT', '/v1/microvms/%zz'), ErrorCode.METHOD_NOT_ALLOWED, 405);
});

test('the first matching route wins and later routes are still tried for other methods', () => {
  const r = new Router();
  const literal = route('GET', '/v1/microvms/stats');
  const param = route('GET', '/v1/microvms/:id');
  const del = route('DELETE', '/v1/microvms/:id');
  r.add(literal);
  r.add(param);
  r.add(del);
  assert.equal(r.match('GET', '/v1/microvms/stats').route, literal);
  assert.deepEqual(r.match('GET', '/v1/microvms/other'), { route: param, params: { id: 'other' } });
  assert.deepEqual(r.match('DELETE', '/v1/microvms/stats'), { route: del, params: { id: 'stats' } });
});

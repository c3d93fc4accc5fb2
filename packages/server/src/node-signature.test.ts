// Node requests: signed with the cluster key over method, path, time, node and tenant; anything else refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeSignatures, verifyNodeRequest } from './node-signature.js';

const KEY = 'k'.repeat(40);
const NOW = 1_796_000_000_000;
const PATH = '/v1/microvms/mvm-a/resume';

test('a request signed with the cluster key is the tenant its node acts for', () => {
  const nodes = new NodeSignatures(KEY);
  const headers = nodes.sign('POST', PATH, 'h1', 'acme', NOW);
  assert.deepEqual(verifyNodeRequest(nodes, 'post', PATH, headers, NOW + 59_000), { node: 'h1', tenantId: 'acme' });
  assert.equal(verifyNodeRequest(nodes, 'POST', PATH, { authorization: 'Bearer cap_x' }, NOW), null, 'not signed');
});

test('another key, method, path, tenant, node or time is refused, as is a server without the key', () => {
  const nodes = new NodeSignatures(KEY);
  const headers = nodes.sign('POST', PATH, 'h1', 'acme', NOW);
  const refused = (why: RegExp, run: () => unknown) =>
    assert.throws(run, (err: Error & { code?: string }) => err.code === 'UNAUTHORIZED' && why.test(err.message));
  refused(/bad signature/, () => verifyNodeRequest(new NodeSignatures('x'.repeat(40)), 'POST', PATH, headers, NOW));
  refused(/bad signature/, () => verifyNodeRequest(nodes, 'DELETE', PATH, headers, NOW));
  refused(/bad signature/, () => verifyNodeRequest(nodes, 'POST', '/v1/microvms/mvm-b/resume', headers, NOW));
  for (const [name, value] of [
    ['x-capsule-node-tenant', 'other'],
    ['x-capsule-node', 'h2'],
    ['x-capsule-node-date', String(NOW + 1)],
  ])
    refused(/bad signature/, () => verifyNodeRequest(nodes, 'POST', PATH, { ...headers, [name]: value }, NOW));
  refused(/more than a minute off/, () => verifyNodeRequest(nodes, 'POST', PATH, headers, NOW + 61_000));
  refused(/more than a minute off/, () => verifyNodeRequest(nodes, 'POST', PATH, headers, NOW - 61_000));
  refused(/incomplete/, () =>
    verifyNodeRequest(nodes, 'POST', PATH, { ...headers, 'x-capsule-node-tenant': undefined }, NOW),
  );
  refused(/no CAPSULE_CLUSTER_KEY/, () => verifyNodeRequest(null, 'POST', PATH, headers, NOW));
});

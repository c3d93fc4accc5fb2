import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CONTRACT_FILE, contractDocument } from './contract.js';

test(
  'the committed OpenAPI document (docs/openapi.json) is the one the route table generates: run `npm run ' +
    'openapi` after a contract change',
  () => {
    const committed = JSON.parse(fs.readFileSync(CONTRACT_FILE, 'utf8')) as object;
    assert.deepEqual(JSON.parse(JSON.stringify(contractDocument())), committed);
  },
);

test('every operation declares its auth level, and only the public ones need no key', () => {
  const doc = contractDocument() as {
    paths: Record<string, Record<string, { security?: unknown[]; 'x-capsule-auth'?: string }>>;
  };
  const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })),
  );
  assert.ok(operations.length >= 30, `${operations.length} operations`);
  for (const { name, op } of operations) {
    assert.ok(['public', 'tenant', 'admin'].includes(op['x-capsule-auth'] ?? ''), name);
    assert.equal(op.security?.length === 0, op['x-capsule-auth'] === 'public', name);
  }
  const pub = operations
    .filter(({ op }) => op['x-capsule-auth'] === 'public')
    .map(({ name }) => name)
    .sort();
  assert.deepEqual(pub, ['GET /healthz', 'GET /v1/openapi.json']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapsuleError } from '@capsule/protocol';
import { endpointUrl } from './wire.js';

test('endpoints: a path on the public URL (or the Host called), or the host form under the base domain', () => {
  const path = { publicUrl: null, form: 'path' as const, baseDomain: 'localhost' };
  assert.equal(endpointUrl(path, '127.0.0.1:7070', 'mvm-a'), 'http://127.0.0.1:7070/endpoints/mvm-a');
  const pub = { ...path, publicUrl: 'https://capsule.example.com/api/' };
  assert.equal(endpointUrl(pub, 'ignored:1', 'mvm-a'), 'https://capsule.example.com/api/endpoints/mvm-a');
  const host = { publicUrl: 'https://capsule.example.com:8443', form: 'host' as const, baseDomain: 'vms.example.com' };
  assert.equal(endpointUrl(host, 'x', 'mvm-a'), 'https://mvm-a.vms.example.com:8443');
  assert.equal(
    endpointUrl({ ...host, publicUrl: null }, '10.0.0.5:7070', 'mvm-b'),
    'http://mvm-b.vms.example.com:7070',
  );
  assert.throws(() => endpointUrl(path, 'a b', 'mvm-a'), CapsuleError);
});

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServerKey } from './server-key.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'server-key-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('the key is made once, 0600, and reloads to open what it sealed', () => {
  const dir = fs.mkdtempSync(path.join(work, 'a-'));
  const sealed = ServerKey.load(dir).seal('the secret', 'AKIA1');
  assert.equal(fs.statSync(path.join(dir, 'server-key')).mode & 0o777, 0o600);
  assert.doesNotMatch(sealed, /the secret/);
  assert.equal(ServerKey.load(dir).open(sealed, 'AKIA1'), 'the secret');
});

test('each seal is fresh; a sealed value opens only for its owner, untampered, with its own key', () => {
  const dir = fs.mkdtempSync(path.join(work, 'b-'));
  const key = ServerKey.load(dir);
  const one = key.seal('s', 'AKIA1');
  assert.notEqual(one, key.seal('s', 'AKIA1'));
  assert.throws(() => key.open(one, 'AKIA2'), /does not open/);
  const [format, nonce, body] = one.split('.');
  const flipped = Buffer.from(body, 'base64url');
  flipped[0] ^= 1;
  assert.throws(() => key.open([format, nonce, flipped.toString('base64url')].join('.'), 'AKIA1'), /does not open/);
  assert.throws(() => key.open('garbage', 'AKIA1'), /malformed/);
  const other = ServerKey.load(fs.mkdtempSync(path.join(work, 'c-')));
  assert.throws(() => other.open(one, 'AKIA1'), /server-key replaced/);
});

test('a server-key file that is not a key is refused with what to do', () => {
  const dir = fs.mkdtempSync(path.join(work, 'd-'));
  fs.writeFileSync(path.join(dir, 'server-key'), 'short\n', { mode: 0o600 });
  assert.throws(() => ServerKey.load(dir), /restore it from a backup/);
});

test("with a cluster key, every server of the cluster opens what one sealed; the file's older seals still open", () => {
  const dir = fs.mkdtempSync(path.join(work, 'e-'));
  const before = ServerKey.load(dir).seal('old', 'AKIA0');
  const one = ServerKey.load(dir, 'cluster-secret');
  const sealed = one.seal('the secret', 'AKIA1');
  assert.match(sealed, /^c1\./);
  const another = ServerKey.load(fs.mkdtempSync(path.join(work, 'f-')), 'cluster-secret');
  assert.equal(another.open(sealed, 'AKIA1'), 'the secret');
  assert.equal(one.open(before, 'AKIA0'), 'old');
  assert.throws(() => ServerKey.load(dir, 'another-cluster').open(sealed, 'AKIA1'), /CAPSULE_CLUSTER_KEY changed/);
  assert.throws(() => ServerKey.load(dir).open(sealed, 'AKIA1'), /needs CAPSULE_CLUSTER_KEY/);
});

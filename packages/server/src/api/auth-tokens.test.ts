// Endpoint tokens' signing key: the data dir's own, or one derived from the cluster key, which every server
// sharing it derives alike (a token one makes, another verifies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthTokens } from './auth-tokens.js';

const claims = { microvmId: 'mvm-a', tenantId: 't', allowedPorts: [8080], expiresAtMs: Date.now() + 60_000 };

test("with a cluster key every server verifies every server's tokens; without, each its own", (t) => {
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'tokens-')));
  t.after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  const key = 'k'.repeat(40);
  const token = AuthTokens.load(dirs[0], key).issue(claims);
  assert.equal(AuthTokens.load(dirs[1], key).verify(token)?.microvmId, 'mvm-a');
  assert.equal(AuthTokens.load(dirs[1], 'x'.repeat(40)).verify(token), null, 'another cluster key');
  const own = AuthTokens.load(dirs[0], null).issue(claims);
  assert.equal(AuthTokens.load(dirs[0], null).verify(own)?.microvmId, 'mvm-a', 'the data dir keeps its key');
  assert.equal(AuthTokens.load(dirs[1], null).verify(own), null, "another data dir's key");
  assert.equal(AuthTokens.load(dirs[0], key).verify(own), null, 'the cluster key is not the data dir key');
});

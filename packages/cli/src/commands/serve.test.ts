// `capsule serve` with a bad environment variable: one line naming it, exit 2, nothing started or written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');

test('capsule serve with a bad variable exits 2 with one line naming it, before touching the data dir', (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-config-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const dataDir = path.join(work, 'data');
  const run = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--data-dir', dataDir], {
    env: { ...process.env, CAPSULE_ACCELERATOR: 'kvmm', CAPSULE_LOG: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 2, run.stderr);
  assert.equal(run.stderr, 'capsule: CAPSULE_ACCELERATOR: "kvmm" is not one of auto, kvm, tcg\n');
  assert.equal(run.stdout, '');
  assert.equal(fs.existsSync(dataDir), false);
});

test('capsule serve: a bad --host-id, --advertise or --role exits 2 naming it, the data dir untouched', (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-flags-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const dataDir = path.join(work, 'data');
  for (const [flag, value, message] of [
    ['--host-id', '../h1', '--host-id: "../h1" is not 1-63 letters, digits, dots, dashes or underscores'],
    ['--advertise', 'h1:7070', '--advertise: "h1:7070" is not a URL starting http:// or https://'],
    ['--role', 'vm', '--role: "vm" is not all, host or api'],
    [
      '--role',
      'api',
      'CAPSULE_ROLE=api needs DATABASE_URL=postgres://…, CAPSULE_BLOBS=s3://…, CAPSULE_CLUSTER_KEY: the servers ' +
        'of a cluster share one database, one blob store and one key',
    ],
    // a host of a cluster without the cluster's database, blob store and key
    [
      '--role',
      'host',
      'CAPSULE_ROLE=host needs DATABASE_URL=postgres://…, CAPSULE_BLOBS=s3://…, CAPSULE_CLUSTER_KEY: the servers ' +
        'of a cluster share one database, one blob store and one key',
    ],
  ]) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--data-dir', dataDir, flag, value], {
      env: { ...process.env, CAPSULE_LOG: '', DATABASE_URL: '', CAPSULE_BLOBS: '', CAPSULE_CLUSTER_KEY: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`^capsule: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
    assert.equal(fs.existsSync(dataDir), false);
  }
});

// The shared blob store's garbage (shared-garbage.ts), on a real S3 server (s3rver) and store: a base stays while a
// suspended VM needs it, suspended states stay while their record names them, a resume holding a VM keeps every
// base for the round; what nothing needs goes, with this host's cached copies, and a later publish starts anew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { S3BlobStore } from '../blobs/s3-blob-store.js';
import { createLogger } from '../log.js';
import { SqlStore } from '../store/sql-store.js';
import { SqliteDriver } from '../store/sqlite-driver.js';
import { sampleRecord } from '../../../../tests/support/store-backends.js';
import { startS3 } from '../../../../tests/support/s3-server.js';
import { SharedGarbage } from './shared-garbage.js';
import { SuspendedStates } from './suspended-transfer.js';

const SUSPENDED_AT = '2026-12-04T10:00:00.000Z';
/** Collections look this far ahead, so everything written so far is past a grace of 0. */
const LATER_MS = 5000;

test('shared garbage: what a suspended VM needs stays; what nothing needs goes, cached copies too', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-garbage-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const s3 = await startS3(['gc']);
  t.after(() => s3.close());
  const cacheDir = path.join(root, 'cache');
  const blobs = new S3BlobStore(s3.config, 'gc', 'capsule', cacheDir);
  t.after(() => blobs.destroy());
  const store = await SqlStore.open(new SqliteDriver(path.join(root, 'capsule.db')));
  t.after(() => store.close());
  const log = createLogger(process.stderr, true);
  const states = new SuspendedStates({ blobs, store, qemuImgBinary: 'qemu-img', log });
  const garbage = new SharedGarbage({ blobs, store, log }, 0);
  const collect = () => garbage.collect(Date.now() + LATER_MS);

  // three VMs suspended over one snapshot base (its files beside each VM's overlay)
  const lower = path.join(root, 'rootfs.raw');
  fs.writeFileSync(lower, Buffer.alloc(1 << 20, 1));
  const publishVm = async (id: string): Promise<string> => {
    const dir = path.join(root, 'suspended', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'state'), `state of ${id}`);
    fs.writeFileSync(path.join(dir, 'base-memory'), 'base memory');
    fs.writeFileSync(path.join(dir, 'base-state'), 'base state');
    execFileSync('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'raw',
      '-b',
      lower,
      path.join(dir, 'base-disk.qcow2'),
    ]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base-disk.qcow2', 'disk.qcow2'], {
      cwd: dir,
    });
    const record = sampleRecord(id, { state: 'SUSPENDED', suspendedAt: SUSPENDED_AT });
    await store.insertMicroVM(record);
    assert.equal(await states.publish(record, dir), true);
    return (await store.getMicroVM(id))!.suspendedBlob!;
  };
  const [keyA, keyB] = [await publishVm('mvm-a'), await publishVm('mvm-b')];
  const [base] = await store.listSharedBases();
  const basePrefix = `bases/${base.sha}/${base.generation}`;
  const exists = async (key: string) => (await blobs.head(key)) !== null;
  // left behind: a state whose VM is gone, a state cut short, a base from before generations
  await blobs.put('suspended/mvm-gone/1/state', Buffer.from('x'));
  await blobs.put('suspended/mvm-b/1/disk.qcow2', Buffer.from('x'));
  await blobs.put('bases/0123abcd/memory', Buffer.from('old base'));

  // nothing of what the suspended VMs need goes; the leftovers do
  const first = await collect();
  assert.deepEqual(first.removed.sort(), ['bases/0123abcd', 'suspended/mvm-b/1', 'suspended/mvm-gone/1']);
  for (const key of [`${keyA}/state`, `${keyB}/state`, `${basePrefix}/memory.gz`, `${basePrefix}/ready`])
    assert.equal(await exists(key), true, key);

  // a's VM ended but its state's removal failed: its state goes, the base stays for b
  await store.transition('mvm-a', 'SUSPENDED', 'TERMINATING');
  await store.transition('mvm-a', 'TERMINATING', 'TERMINATED');
  assert.deepEqual((await collect()).removed, [keyA]);
  assert.equal(await exists(`${basePrefix}/memory.gz`), true);

  // b ends while a resume holds nothing: its state and the base go, with this host's cached copy of the base
  await store.updateMicroVM('mvm-b', { suspendedBlob: '' }); // a resume holds it: which base it fetches is unknown
  const whileHeld = await collect();
  assert.deepEqual([whileHeld.removed, whileHeld.basesSkipped], [[], 'a resume holds 1 MicroVM(s)']);
  await store.updateMicroVM('mvm-b', { suspendedBlob: keyB });
  assert.ok(blobs.localCopies('bases').length > 0, 'the base was seeded into the cache as it went up');
  await store.transition('mvm-b', 'SUSPENDED', 'TERMINATING');
  await store.transition('mvm-b', 'TERMINATING', 'TERMINATED');
  const last = await collect();
  assert.deepEqual(last.removed.sort(), [basePrefix, keyB].sort());
  assert.equal(await exists(`${basePrefix}/memory.gz`), false);
  assert.deepEqual(await store.listSharedBases(), []);
  assert.deepEqual(blobs.localCopies('bases'), []);
  assert.ok(last.freedBytes > 0);

  // a later suspend over that snapshot uploads its base again, under a new generation, whole
  const keyC = await publishVm('mvm-c');
  const [again] = await store.listSharedBases();
  assert.notEqual(again.generation, base.generation);
  for (const name of ['memory.gz', 'disk.qcow2', 'state', 'ready'])
    assert.equal(await exists(`bases/${again.sha}/${again.generation}/${name}`), true, name);
  // within the grace, nothing goes
  assert.deepEqual((await new SharedGarbage({ blobs, store, log }).collect()).removed, []);
  assert.equal(await exists(`${keyC}/state`), true);
});

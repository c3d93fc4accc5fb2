// Suspended state published to a blob store and fetched as another host would: the VM's files whole, its base
// uploaded once for every VM over it, and the disk chain re-pointed at the fetching host's own lower layer
// (real qemu-img; a local blob store stands in for S3's interface).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBlobStore } from '../blobs/blob-store.js';
import { createLogger } from '../log.js';
import type { MicroVMRecord } from '../store/types.js';
import { backingOf } from '../vmm/backing-chain.js';
import { SuspendedStates } from './suspended-transfer.js';
import { sampleRecord } from '../../../../tests/support/store-backends.js';

const SUSPENDED_AT = '2026-12-04T10:00:00.000Z';
/** A memory image as a guest leaves it: mostly zeros, some pages written (one straddling a block boundary). */
const BASE_MEMORY = Buffer.alloc(8 << 20);
BASE_MEMORY.write('base memory', 1 << 20);
BASE_MEMORY.write('a page across a block boundary', (3 << 20) - 10);
BASE_MEMORY.write('the last bytes', BASE_MEMORY.length - 14);

function qcow2(file: string, backing: string, format: 'raw' | 'qcow2'): void {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', backing, file]);
}

function setUp(t: { after(fn: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'suspended-transfer-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const blobs = new LocalBlobStore(path.join(root, 'blobs'));
  const records = new Map<string, MicroVMRecord>();
  const puts: string[] = [];
  const generations = new Map<string, string>();
  const put = blobs.put.bind(blobs);
  blobs.put = (key, body) => (puts.push(key), put(key, body));
  const store = {
    async publishSuspendedBlob(id: string, suspendedAt: string, key: string) {
      const r = records.get(id);
      if (r?.state !== 'SUSPENDED' || r.suspendedAt !== suspendedAt) return false;
      records.set(id, { ...r, suspendedBlob: key });
      return true;
    },
    async getMicroVM(id: string) {
      return records.get(id) ?? null;
    },
    async useSharedBase(sha: string, generation: string) {
      if (!generations.has(sha)) generations.set(sha, generation);
      return generations.get(sha)!;
    },
  };
  const states = new SuspendedStates({
    blobs,
    store,
    qemuImgBinary: 'qemu-img',
    log: createLogger(process.stderr, true),
  });
  // this host's lower layer (a runtime's raw image) and another's, at another path
  const lower = path.join(root, 'here', 'rootfs.raw');
  const otherLower = path.join(root, 'there', 'rootfs.raw');
  for (const file of [lower, otherLower]) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 1));
  }
  /** A suspend dir as a suspend on `lowerPath`'s host leaves it, with or without the snapshot base beside it. */
  const suspendDir = (id: string, withBase: boolean): { record: MicroVMRecord; dir: string } => {
    const dir = path.join(root, 'there', 'suspended', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'state'), `state of ${id}`);
    if (withBase) {
      fs.writeFileSync(path.join(dir, 'base-memory'), BASE_MEMORY);
      fs.writeFileSync(path.join(dir, 'base-state'), 'base state');
      qcow2(path.join(dir, 'base-disk.qcow2'), otherLower, 'raw');
      execFileSync(
        'qemu-img',
        ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base-disk.qcow2', path.join(dir, 'disk.qcow2')],
        { cwd: dir },
      );
    } else {
      qcow2(path.join(dir, 'disk.qcow2'), otherLower, 'raw');
      fs.writeFileSync(path.join(dir, 'backing'), otherLower);
    }
    const record = sampleRecord(id, { state: 'SUSPENDED', suspendedAt: SUSPENDED_AT });
    records.set(id, record);
    return { record, dir };
  };
  return { root, blobs, records, puts, states, lower, suspendDir };
}

test('a state over a snapshot base: published with its base once, fetched onto this host’s lower layer', async (t) => {
  const { root, records, puts, states, lower, suspendDir } = setUp(t);
  const a = suspendDir('mvm-a', true);
  assert.equal(await states.publish(a.record, a.dir), true);
  const key = records.get('mvm-a')!.suspendedBlob!;
  assert.match(key, /^suspended\/mvm-a\/\d+$/);
  const b = suspendDir('mvm-b', true);
  assert.equal(await states.publish(b.record, b.dir), true);
  assert.equal(puts.filter((k) => k.endsWith('/memory.gz')).length, 1, 'the base went once for both VMs, gzipped');

  const target = path.join(root, 'here', 'suspended', 'mvm-a');
  await states.fetch(key, target, { path: lower, format: 'raw' });
  assert.equal(fs.readFileSync(path.join(target, 'state'), 'utf8'), 'state of mvm-a');
  const memory = path.join(target, 'base-memory');
  assert.ok(fs.readFileSync(memory).equals(BASE_MEMORY), 'the base memory, byte for byte');
  assert.ok(fs.statSync(memory).blocks * 512 < 1 << 20, 'its zero blocks holes: a few KiB on disk of 8 MiB');
  assert.equal(fs.readFileSync(path.join(target, 'base-state'), 'utf8'), 'base state');
  assert.equal(backingOf(path.join(target, 'disk.qcow2')), path.join(target, 'base-disk.qcow2'));
  assert.equal(backingOf(path.join(target, 'base-disk.qcow2')), lower, "the base chains on this host's layer");
  execFileSync('qemu-img', ['check', '-q', path.join(target, 'disk.qcow2')]);
});

test('a booted VM’s state (no base): its overlay re-pointed, and the layer recorded for its jail', async (t) => {
  const { root, records, states, lower, suspendDir } = setUp(t);
  const a = suspendDir('mvm-a', false);
  assert.equal(await states.publish(a.record, a.dir), true);
  const target = path.join(root, 'here', 'suspended', 'mvm-a');
  fs.mkdirSync(target, { recursive: true });
  fs.writeFileSync(path.join(target, 'stale'), 'from before');
  await states.fetch(records.get('mvm-a')!.suspendedBlob!, target, { path: lower, format: 'raw' });
  assert.deepEqual(fs.readdirSync(target).sort(), ['backing', 'disk.qcow2', 'state']);
  assert.equal(backingOf(path.join(target, 'disk.qcow2')), lower);
  assert.equal(fs.readFileSync(path.join(target, 'backing'), 'utf8'), lower);
});

test('a stale publish records nothing and leaves nothing; a missing state fails clearly', async (t) => {
  const { root, blobs, records, states, lower, suspendDir } = setUp(t);
  const a = suspendDir('mvm-a', false);
  records.set('mvm-a', { ...a.record, state: 'RUNNING' });
  assert.equal(await states.publish(a.record, a.dir), false);
  assert.equal(await blobs.head(`suspended/mvm-a/${Date.parse(SUSPENDED_AT)}/state`), null);
  const target = path.join(root, 'here', 'suspended', 'mvm-a');
  await assert.rejects(states.fetch('suspended/mvm-a/1', target, { path: lower, format: 'raw' }), (err: Error) => {
    assert.match(err.message, /could not fetch the suspended state from .*blobs/);
    return true;
  });
  assert.equal(fs.existsSync(target), false, 'nothing half fetched is left');
});

test('a state on the legacy user-mode network stays on its host', async (t) => {
  const { puts, states, suspendDir } = setUp(t);
  const a = suspendDir('mvm-a', false);
  fs.writeFileSync(path.join(a.dir, 'legacy-user-net'), '');
  assert.equal(await states.publish(a.record, a.dir), false);
  assert.deepEqual(puts, []);
});

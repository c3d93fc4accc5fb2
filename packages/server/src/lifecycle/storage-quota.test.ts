// The storage meter on a real SQLite store and a real blob directory: what counts (overlays, suspended
// state, image artifacts and build logs of this tenant's live VMs and images), what does not (terminated
// VMs, other tenants), the breakdown in a refusal, and a quota added after a tenant was made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CapsuleError, ErrorCode, type TenantQuotas } from '@capsule/protocol';
import { LocalBlobStore } from '../blobs/blob-store.js';
import { SqlStore } from '../store/sql-store.js';
import { SqliteDriver } from '../store/sqlite-driver.js';
import { pendingRecord } from './records.js';
import { StorageMeter } from './storage-quota.js';
import { effectiveQuotas } from './quotas.js';
import { until } from '../../../../tests/support/until.js';

const MIB = 1 << 20;
const DEFAULTS: TenantQuotas = { maxRunningMicroVMs: 10, maxVcpus: 20, maxMemoryMib: 8192, maxStorageMib: 100 };

/** A VM of `tenantId` on `hostId` in `state`, its directory under `vmsDir`. */
function recordOf(tenantId: string, hostId: string, vmsDir: string, state: 'RUNNING' | 'SUSPENDED' | 'TERMINATED') {
  const record = pendingRecord(
    tenantId,
    { imageName: 'base' },
    {
      vmsDir,
      network: { egress: 'none', allow: [], deny: [] },
      maximumDurationSeconds: 60,
      accelerator: 'tcg',
      imageVersion: null,
      vcpuCount: 1,
      memoryMib: 256,
      env: {},
      hostId,
    },
  );
  return { ...record, state };
}

function writeRandom(file: string, bytes: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, randomBytes(bytes));
}

test(
  'storage meter: overlays, suspended state and images counted per tenant; a refusal names the ' + 'breakdown',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-storage-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const store = await SqlStore.open(new SqliteDriver(path.join(dir, 'capsule.db')));
    t.after(() => store.close());
    const blobs = new LocalBlobStore(path.join(dir, 'blobs'));
    const dirs = {
      vmsDir: path.join(dir, 'vms'),
      suspendedDir: path.join(dir, 'suspended'),
      imagesDir: path.join(dir, 'images'),
    };
    const meter = new StorageMeter({ store, blobs, ...dirs, defaults: DEFAULTS, hostId: 'h1' });
    await store.insertTenant({
      id: 'ten-a',
      name: 'a',
      quotas: { maxRunningMicroVMs: 1, maxVcpus: 2, maxMemoryMib: 1024 },
      createdAt: new Date().toISOString(),
    });

    const vm = (state: 'RUNNING' | 'SUSPENDED' | 'TERMINATED', tenantId = 'ten-a') => {
      const record = recordOf(tenantId, 'h1', dirs.vmsDir, state);
      return store.insertMicroVM(record).then(() => record);
    };
    const running = await vm('RUNNING');
    writeRandom(path.join(running.vmDir!, 'overlay.qcow2'), 3 * MIB);
    const suspended = await vm('SUSPENDED');
    writeRandom(path.join(dirs.suspendedDir, suspended.id, 'memory'), 5 * MIB);
    writeRandom(path.join(dirs.suspendedDir, suspended.id, 'disk.qcow2'), 1 * MIB);
    const gone = await vm('TERMINATED');
    writeRandom(path.join(gone.vmDir!, 'overlay.qcow2'), 7 * MIB); // left behind: not the tenant's any more
    const others = await vm('RUNNING', 'ten-b');
    writeRandom(path.join(others.vmDir!, 'overlay.qcow2'), 11 * MIB);
    await blobs.put('images/ten-a/app/1/layer.qcow2', randomBytes(2 * MIB));
    writeRandom(path.join(dirs.imagesDir, 'ten-a', 'app', '1', 'build.log'), MIB / 2);
    await blobs.put('images/ten-ab/app/1/layer.qcow2', randomBytes(13 * MIB)); // a tenant whose id starts the same

    const usage = await meter.usage('ten-a');
    const near = (actual: number, expected: number) =>
      assert.ok(actual >= expected && actual < expected + 0.2, `${actual} vs ${expected}`);
    near(usage.overlaysMib, 3);
    near(usage.suspendedMib, 6);
    near(usage.imagesMib, 2.5);
    near(usage.totalMib, 11.5);

    // a tenant made before maxStorageMib existed takes the server's default (100): under it
    assert.deepEqual(effectiveQuotas(await store.getTenant('ten-a'), DEFAULTS), {
      maxRunningMicroVMs: 1,
      maxVcpus: 2,
      maxMemoryMib: 1024,
      maxStorageMib: 100,
    });
    await meter.check('ten-a', 'launch a MicroVM');

    // at its quota: refused with the figures
    await store.updateTenantQuotas('ten-a', {
      ...effectiveQuotas(await store.getTenant('ten-a'), DEFAULTS),
      maxStorageMib: 11,
    });
    const refused = await meter.check('ten-a', 'launch a MicroVM').catch((err: unknown) => err);
    assert.ok(refused instanceof CapsuleError && refused.code === ErrorCode.QUOTA_EXCEEDED, String(refused));
    const details = refused.details as {
      quota: string;
      limit: number;
      used: number;
      storage: { suspendedMib: number };
    };
    assert.deepEqual([details.quota, details.limit], ['maxStorageMib', 11]);
    near(details.used, 11.5);
    near(details.storage.suspendedMib, 6);
    assert.match(
      refused.message,
      new RegExp(
        String.raw`cannot launch a MicroVM: quota maxStorageMib exceeded: 11\.\d MiB in use ` +
          String.raw`\(suspended VMs 6(\.\d)?, disk overlays 3(\.\d)?, images 2\.\d\) of 11 MiB`,
      ),
    );

    // the figure is kept briefly; forget() measures again at once
    fs.rmSync(path.join(dirs.suspendedDir, suspended.id), { recursive: true });
    near((await meter.usage('ten-a')).suspendedMib, 6);
    meter.forget('ten-a');
    assert.equal((await meter.usage('ten-a')).suspendedMib, 0);
    await meter.check('ten-a', 'launch a MicroVM');
  },
);

test("across hosts: another host's VMs count as their host recorded them, on any server", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = await SqlStore.open(new SqliteDriver(path.join(dir, 'capsule.db')));
  t.after(() => store.close());
  const blobs = new LocalBlobStore(path.join(dir, 'blobs'));
  const dirsOf = (host: string) => ({
    vmsDir: path.join(dir, host, 'vms'),
    suspendedDir: path.join(dir, host, 'suspended'),
    imagesDir: path.join(dir, host, 'images'),
  });
  const meterOf = (hostId: string | null) =>
    new StorageMeter({ store, blobs, ...dirsOf(hostId ?? 'api'), defaults: DEFAULTS, hostId });
  const vmOn = async (hostId: string, state: 'RUNNING' | 'SUSPENDED', mib: number) => {
    const dirs = dirsOf(hostId);
    const record = recordOf('ten-a', hostId, dirs.vmsDir, state);
    await store.insertMicroVM(record);
    const file =
      state === 'RUNNING'
        ? path.join(record.vmDir!, 'overlay.qcow2')
        : path.join(dirs.suspendedDir, record.id, 'disk.qcow2');
    writeRandom(file, mib * MIB);
    return record;
  };
  const onH1 = await vmOn('h1', 'RUNNING', 3);
  const onH2 = await vmOn('h2', 'SUSPENDED', 5);
  const [h1, h2, api] = [meterOf('h1'), meterOf('h2'), meterOf(null)];
  const near = (actual: number, expected: number, what: string) =>
    assert.ok(actual >= expected && actual < expected + 0.2, `${what}: ${actual} vs ${expected}`);
  // h2 has not measured yet: h1 sees only its own
  near((await h1.usage('ten-a')).totalMib, 3, 'h1 before h2 recorded');
  // a check only reads: what a host holds is written by its recording rounds alone
  assert.equal((await store.microVMStorage([onH1.id, onH2.id])).size, 0);
  h2.startRecording(60_000);
  t.after(() => h2.stopRecording());
  await until('h2 records its own', async () => (await store.microVMStorage([onH2.id])).size === 1);
  h1.forget('ten-a');
  const fromH1 = await h1.usage('ten-a');
  near(fromH1.overlaysMib, 3, 'h1 measures its own');
  near(fromH1.suspendedMib, 5, "h2's as h2 recorded it");
  // the api node reads both as their hosts recorded them
  h1.startRecording(60_000);
  t.after(() => h1.stopRecording());
  await until('h1 records its own', async () => (await store.microVMStorage([onH1.id])).size === 1);
  const fromApi = await api.usage('ten-a');
  near(fromApi.totalMib, 8, 'a server with no VMs, from the records');
  await store.insertTenant({ id: 'ten-a', name: 'a', quotas: { ...DEFAULTS, maxStorageMib: 8 }, createdAt: '' });
  await assert.rejects(
    api.check('ten-a', 'launch a MicroVM'),
    /quota maxStorageMib exceeded: 8(\.\d)? MiB in use \(suspended VMs 5(\.\d)?, disk overlays 3/,
  );
});

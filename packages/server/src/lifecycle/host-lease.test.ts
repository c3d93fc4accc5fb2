// Hosts' leases on SQLite and Postgres: a host that stops renewing is marked down by another, its live
// MicroVMs FAILED and its suspended ones kept; a host given up while it ran learns it at its next renewal.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log.js';
import type { ImageVersionRecord, Store } from '../store/types.js';
import { HostLease, type HostLeaseSettings } from './host-lease.js';
import {
  openTestStore,
  samplePlan,
  sampleRecord,
  STORE_BACKENDS,
  type After,
} from '../../../../tests/support/store-backends.js';
import { until } from '../../../../tests/support/until.js';

// short enough for a quick test, long enough that a loaded machine never misses a renewal (every third of it)
const LEASE_MS = 3000;
const log = createLogger(process.stderr, true);

function settings(hostId: string, t: After): HostLeaseSettings {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `lease-${hostId}-`));
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  return { hostId, leaseMs: LEASE_MS, dataDir, accelerator: 'tcg', qemuVersion: '10.0.2', maxMemoryMib: null };
}

async function startHost(store: Store, hostId: string, t: After, onGivenUp = async () => {}): Promise<HostLease> {
  const lease = await HostLease.register(store, settings(hostId, t), `http://${hostId}:7071`, log);
  await lease.start(`http://${hostId}:7071`, onGivenUp);
  t.after(() => lease.stop());
  return lease;
}

/** A version `buildHostId` builds, named after it. */
function building(buildHostId: string): Omit<ImageVersionRecord, 'version'> {
  const at = new Date().toISOString();
  return {
    tenantId: 't1',
    name: `on-${buildHostId}`,
    state: 'PENDING',
    runtime: 'python',
    source: 'upload',
    plan: samplePlan(),
    failureReason: null,
    failedStep: null,
    createdAt: at,
    updatedAt: at,
    finishedAt: null,
    status: 'ACTIVE',
    awsConfig: null,
    buildHostId,
  };
}

const stateOf = async (store: Store, id: string) => (await store.getMicroVM(id))?.state;

for (const backend of STORE_BACKENDS) {
  describe(`host leases on ${backend.name}`, () => {
    test('a host that stops renewing is marked down by another: live MicroVMs FAILED, suspended kept', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM(sampleRecord('mvm-h1-run', { state: 'RUNNING', hostId: 'h1' }));
      await store.insertMicroVM(sampleRecord('mvm-h1-susp', { state: 'SUSPENDED', hostId: 'h1' }));
      await store.insertMicroVM(sampleRecord('mvm-h2-run', { state: 'RUNNING', hostId: 'h2' }));
      await store.insertMicroVM(sampleRecord('mvm-old', { state: 'RUNNING', hostId: null }));
      for (const buildHostId of ['h1', 'h2']) await store.insertImageVersion(building(buildHostId));
      const h1 = await startHost(store, 'h1', t);
      const h2 = await startHost(store, 'h2', t);
      assert.equal((await store.getMicroVM('mvm-old'))!.hostId, 'h1', 'a record from before hosts is the first host’s');
      const hosts = await store.listHosts();
      assert.deepEqual(
        hosts.map((h) => [h.id, h.state, h.advertiseUrl, h.capacity.accelerator]),
        [
          ['h1', 'ready', 'http://h1:7071', 'tcg'],
          ['h2', 'ready', 'http://h2:7071', 'tcg'],
        ],
      );
      assert.ok(hosts[0].capacity.vcpus >= 1 && hosts[0].capacity.memoryMib > 0 && hosts[0].capacity.diskMib > 0);
      // renewed: nothing happens over a whole lease
      await new Promise((r) => setTimeout(r, LEASE_MS + 500));
      assert.equal(await stateOf(store, 'mvm-h1-run'), 'RUNNING');

      await h1.stop();
      // the round that gives h1 up records its MicroVMs one by one: wait for both
      const bothFailed = async () =>
        (await stateOf(store, 'mvm-h1-run')) === 'FAILED' && (await stateOf(store, 'mvm-old')) === 'FAILED';
      await until('h1 given up', bothFailed, 10_000);
      const failed = (await store.getMicroVM('mvm-h1-run'))!;
      assert.equal(failed.failureReason, 'host h1 lost');
      assert.equal(failed.qemuPid, 1234, 'what it held is left for h1 to clean up if it comes back');
      assert.equal(await stateOf(store, 'mvm-h1-susp'), 'SUSPENDED', 'a suspended VM holds no host');
      assert.equal(await stateOf(store, 'mvm-h2-run'), 'RUNNING');
      // its builds too; another host's build on
      const buildOf = (name: string) => store.getImageVersion('t1', name, 1);
      await until('its build failed', async () => (await buildOf('on-h1'))?.state === 'FAILED', 10_000);
      assert.equal((await buildOf('on-h1'))?.failureReason, 'host h1 lost during the build; create the image again');
      assert.equal((await buildOf('on-h2'))?.state, 'PENDING');
      const after = await store.listHosts();
      assert.deepEqual(
        after.map((h) => [h.id, h.state, h.downCount]),
        [
          ['h1', 'down', 1],
          ['h2', 'ready', 0],
        ],
      );
      // and back: registered again, ready, and saying what it has ready for launches
      const back = await HostLease.register(store, settings('h1', t), 'http://h1:7071', log);
      await back.start(
        'http://h1:7071',
        async () => {},
        undefined,
        () => ['warm:base', 'cached:t1/app'],
      );
      assert.deepEqual(
        (await store.listHosts()).map((h) => [h.state, h.ready]),
        [
          ['ready', ['warm:base', 'cached:t1/app']],
          ['ready', []],
        ],
      );
      await Promise.all([back.stop(), h2.stop()]); // before the store closes
    });

    test('a drain holds through the host going down and coming back; undrain ends it', async (t) => {
      const store = await openTestStore(backend, t);
      const lease = { heartbeatAt: '2026-12-04T10:00:00.000Z', leaseExpiresAt: '2026-12-04T10:00:03.000Z' };
      const capacity = { vcpus: 2, memoryMib: 4096, diskMib: 1000, accelerator: 'tcg' as const, qemuVersion: '10' };
      const h1 = { id: 'h1', advertiseUrl: 'http://h1:7071', capacity, instanceId: 'i1' };
      await store.registerHost({ ...h1, ...lease });
      await store.setHostDraining('h1', true);
      assert.ok(await store.markHostDown('h1', '2026-12-04T10:00:10.000Z'));
      const stateNow = async () => (await store.listHosts())[0].state;
      assert.equal(await stateNow(), 'down');
      // back by renewing its lease, or by registering again after a restart: draining still
      const later = { heartbeatAt: '2026-12-04T10:01:00.000Z', leaseExpiresAt: '2026-12-04T10:01:03.000Z' };
      assert.equal((await store.renewHostLease('h1', later.heartbeatAt, later.leaseExpiresAt))?.state, 'draining');
      assert.ok(await store.markHostDown('h1', '2026-12-04T10:02:00.000Z'));
      assert.equal((await store.registerHost({ ...h1, ...later }))?.state, 'draining');
      // undrained while down: ready when it is back
      assert.ok(await store.markHostDown('h1', '2026-12-04T10:02:00.000Z'));
      await store.setHostDraining('h1', false);
      assert.equal(await stateNow(), 'down');
      assert.equal((await store.renewHostLease('h1', later.heartbeatAt, later.leaseExpiresAt))?.state, 'ready');
    });

    test('a second server with a live host id is refused at its start; the same data dir takes it back', async (t) => {
      const store = await openTestStore(backend, t);
      const first = settings('h1', t);
      const h1 = await HostLease.register(store, first, 'http://10.0.0.1:7071', log);
      await assert.rejects(
        HostLease.register(store, settings('h1', t), 'http://10.0.0.2:7071', log),
        (err: Error) =>
          err.name === 'ConfigError' &&
          err.message.startsWith('host id h1 is held by another server (http://10.0.0.1:7071, lease until ') &&
          err.message.endsWith('give this one its own --host-id (CAPSULE_HOST_ID), or stop that one'),
      );
      assert.equal((await store.listHosts())[0].advertiseUrl, 'http://10.0.0.1:7071', 'the first one kept');
      // the first, restarted on its data dir while its lease is live, is itself again
      await HostLease.register(store, first, 'http://10.0.0.1:7071', log);
      await h1.stop();
    });

    test('after a store outage longer than a lease, no host is given up: each gets a lease to renew', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM(sampleRecord('mvm-a', { state: 'RUNNING', hostId: 'h1' }));
      let down = false;
      // every call fails while `down`, as on a database that restarts
      const flaky = new Proxy(store, {
        get(target, name, receiver) {
          const value = Reflect.get(target, name, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) =>
            down ? Promise.reject(new Error('the database is unavailable')) : value.apply(target, args);
        },
      });
      const [h1, h2] = [await startHost(flaky, 'h1', t), await startHost(flaky, 'h2', t)];
      await new Promise((r) => setTimeout(r, LEASE_MS + 500)); // past the start-up grace
      down = true;
      await new Promise((r) => setTimeout(r, LEASE_MS * 2));
      down = false;
      await new Promise((r) => setTimeout(r, LEASE_MS * 2));
      assert.deepEqual(
        (await store.listHosts()).map((h) => [h.id, h.state, h.downCount]),
        [
          ['h1', 'ready', 0],
          ['h2', 'ready', 0],
        ],
      );
      assert.equal(await stateOf(store, 'mvm-a'), 'RUNNING');
      await Promise.all([h1.stop(), h2.stop()]);
    });

    test('a host given up while it ran (its lease expired) stops what it lost at its next renewal', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM(sampleRecord('mvm-a', { state: 'RUNNING', hostId: 'h1' }));
      const h2 = await startHost(store, 'h2', t);
      // h1 registered, then stalled (no renewal) long enough to be given up
      const h1 = await HostLease.register(store, settings('h1', t), 'http://h1:7071', log);
      t.after(() => h1.stop());
      await until('h1 given up', async () => (await stateOf(store, 'mvm-a')) === 'FAILED', 10_000);
      assert.equal((await store.listHosts())[0].state, 'down');
      let givenUp = 0;
      await h1.start('http://h1:7071', async () => {
        givenUp++;
      });
      await until('h1 told it was given up', async () => givenUp === 1, 5000);
      assert.equal((await store.listHosts())[0].state, 'ready', 'renewing makes it ready again');
      await new Promise((r) => setTimeout(r, LEASE_MS));
      assert.equal(givenUp, 1, 'told once');
      await Promise.all([h1.stop(), h2.stop()]); // before the store closes
    });
  });
}

// Tenant quotas hold across servers: two servers' quota gates (each its own connection to one Postgres; on
// SQLite, one server's, sharing it) admit concurrently for one tenant and never overshoot; a released
// reservation frees its share, and a host's reservations go when it restarts. SQLite and Postgres.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CapsuleError } from '@capsule/protocol';
import { sampleRecord, STORE_BACKENDS } from '../../../../tests/support/store-backends.js';
import { until } from '../../../../tests/support/until.js';
import { QuotaGate } from './quotas.js';

const QUOTAS = { maxRunningMicroVMs: 3, maxVcpus: 100, maxMemoryMib: 100_000, maxStorageMib: 100_000 };
const demand = (id: string) => ({ id, vcpuCount: 1, memoryMib: 512 });

for (const backend of STORE_BACKENDS) {
  describe(`tenant quotas across servers, on ${backend.name}`, () => {
    test('two servers admitting at once never overshoot; a release frees the share', async (t) => {
      const location = await backend.location(t);
      // SQLite is one server's database: its two "servers" share the connection (one writer at a time anyway)
      const a = await backend.open(location);
      const b = backend.name === 'postgres' ? await backend.open(location) : a;
      t.after(() => Promise.all([a.close(), b !== a ? b.close() : undefined]));
      const gates = [new QuotaGate(a, QUOTAS, undefined, 'h1'), new QuotaGate(b, QUOTAS, undefined, 'h2')];
      // one VM already holds a share
      await a.insertMicroVM(sampleRecord('mvm-held', { tenantId: 'acme', state: 'RUNNING', vcpuCount: 1 }));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => gates[i % 2].admit('acme', demand(`mvm-${i}`))),
      );
      const admitted = results.filter((r) => r.status === 'fulfilled');
      assert.equal(admitted.length, 2, 'three running at most: the held one and two admitted');
      for (const r of results)
        if (r.status === 'rejected') {
          assert.ok(r.reason instanceof CapsuleError);
          assert.match(r.reason.message, /quota maxRunningMicroVMs exceeded: 3 in use \+ 1 requested > 3/);
        }
      // released (its launch failed, say): its share is free again, on either server
      (admitted[0] as PromiseFulfilledResult<() => void>).value();
      await until('the released share admitted again', async () => {
        const release = await gates[1].admit('acme', demand('mvm-again')).catch(() => null);
        return release !== null;
      });
      await assert.rejects(gates[0].admit('acme', demand('mvm-over')), /quota maxRunningMicroVMs exceeded/);
      // a host that restarts held no admission under way: its reservations go
      assert.ok((await a.releaseHostReservations('h2')) >= 1);
      assert.equal(await a.releaseHostReservations('h2'), 0);
    });

    test('a VM counted in its state is not counted again for its reservation', async (t) => {
      const location = await backend.location(t);
      const store = await backend.open(location);
      t.after(() => store.close());
      const gate = new QuotaGate(store, { ...QUOTAS, maxRunningMicroVMs: 2 }, undefined, 'h1');
      await gate.admit('acme', demand('mvm-a'));
      // its PENDING record is stored before the launch releases the reservation
      await store.insertMicroVM(sampleRecord('mvm-a', { tenantId: 'acme', state: 'PENDING', vcpuCount: 1 }));
      await gate.admit('acme', demand('mvm-b'));
      await assert.rejects(gate.admit('acme', demand('mvm-c')), /2 in use \+ 1 requested > 2/);
    });
  });
}

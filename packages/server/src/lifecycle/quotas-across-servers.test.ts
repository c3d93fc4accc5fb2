// Tenant quotas hold across servers: two servers' quota gates (each its own connection to one Postgres; on
// SQLite, one server's, sharing it) admit concurrently for one tenant and never overshoot; a released
// reservation frees its share, and a host's reservations go when it restarts. SQLite and Postgres.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CapsuleError } from '@capsule/protocol';
import { sampleRecord, STORE_BACKENDS } from '../../../../tests/support/store-backends.js';
import { until } from '../../../../tests/support/until.js';
import { QuotaGate } from './quotas.js';
import { PostgresDriver } from '../store/postgres-driver.js';
import type { SqlExecutor } from '../store/driver.js';
import { SqlStore } from '../store/sql-store.js';

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

/** Postgres whose transactions run `between` once, right after their first read of the MicroVMs. */
class InterleavingDriver extends PostgresDriver {
  between: (() => Promise<void>) | null = null;

  override transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return super.transaction((tx) =>
      fn({
        ...tx,
        query: async (sql, params) => {
          const rows = await tx.query(sql, params);
          const between = /FROM microvms/.test(sql) ? this.between : null;
          if (between) {
            this.between = null;
            await between();
          }
          return rows;
        },
      }),
    );
  }
}

test("a launch elsewhere storing its VM and dropping its reservation during an admission's read counts", async (t) => {
  const postgres = STORE_BACKENDS.find((b) => b.name === 'postgres')!;
  const location = await postgres.location(t);
  const elsewhere = await postgres.open(location);
  const driver = new InterleavingDriver(location);
  const here = await SqlStore.open(driver);
  t.after(() => Promise.all([here.close(), elsewhere.close()]));
  const quotas = { ...QUOTAS, maxRunningMicroVMs: 1 };
  // the other server admitted mvm-a: its reservation holds the tenant's one VM
  await new QuotaGate(elsewhere, quotas, undefined, 'h2').admit('acme', demand('mvm-a'));
  // …and while this server reads the tenant's usage, it stores mvm-a and drops the reservation
  driver.between = async () => {
    await elsewhere.insertMicroVM(sampleRecord('mvm-a', { tenantId: 'acme', state: 'PENDING', vcpuCount: 1 }));
    await elsewhere.releaseReservation('mvm-a'); // what its release does, awaited
  };
  await assert.rejects(new QuotaGate(here, quotas, undefined, 'h1').admit('acme', demand('mvm-b')), /1 in use/);
  assert.equal(driver.between, null, 'the launch elsewhere ran during the read');
});

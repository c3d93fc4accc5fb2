// A MicroVM's changes reach the listeners of every server on the database: on Postgres, a change one store makes is
// heard by another store's listener (NOTIFY/LISTEN), once; its own are told at once, never twice.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { sampleRecord, STORE_BACKENDS } from '../../../../tests/support/store-backends.js';
import { until } from '../../../../tests/support/until.js';
import type { MicroVMRecord } from './types.js';

for (const backend of STORE_BACKENDS) {
  describe(`MicroVM changes on ${backend.name}`, () => {
    test("a change is told to this server's listeners once, and to every other server's", async (t) => {
      const location = await backend.location(t);
      const a = await backend.open(location);
      const b = backend.name === 'postgres' ? await backend.open(location) : a;
      t.after(async () => {
        await a.close();
        if (b !== a) await b.close();
      });
      const heardA: MicroVMRecord[] = [];
      const heardB: MicroVMRecord[] = [];
      a.onMicroVMChange((r) => heardA.push(r));
      b.onMicroVMChange((r) => heardB.push(r));
      await new Promise((r) => setTimeout(r, 300)); // LISTEN issued
      await a.insertMicroVM(sampleRecord('mvm-changes', { state: 'PENDING' }));
      await a.transition('mvm-changes', 'PENDING', 'RUNNING');
      const states = (heard: MicroVMRecord[]) => heard.map((r) => `${r.id} ${r.state}`);
      assert.deepEqual(states(heardA), ['mvm-changes PENDING', 'mvm-changes RUNNING'], 'its own, at once, once');
      await until('the other server hears both', async () => heardB.length >= 2, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      if (b !== a) {
        assert.equal(heardB.length, 2, 'once each');
        assert.ok(heardB.every((r) => r.id === 'mvm-changes'));
        assert.equal(heardB[1].state, 'RUNNING', 'as the record is when heard');
      }
    });

    if (backend.name === 'postgres')
      test("changes made while a server's listening connection was cut are told once it hears again", async (t) => {
        const location = await backend.location(t);
        const [a, b] = [await backend.open(location), await backend.open(location)];
        t.after(async () => {
          await a.close();
          await b.close();
        });
        const admin = new pg.Client({ connectionString: location });
        await admin.connect();
        t.after(() => admin.end());
        const listening = "datname = current_database() AND query = 'LISTEN capsule_microvm_changes'";
        const heardB: MicroVMRecord[] = [];
        b.onMicroVMChange((r) => heardB.push(r));
        await until(
          'b listens',
          async () => (await admin.query(`SELECT 1 FROM pg_stat_activity WHERE ${listening}`)).rowCount === 1,
          10_000,
        );
        // b's LISTEN connection is cut (a network blip, a Postgres restart); it connects again a second later
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE ${listening}`,
        );
        assert.deepEqual(rows, [{ cut: true }]);
        await a.insertMicroVM(sampleRecord('mvm-during', { state: 'PENDING' }));
        await a.transition('mvm-during', 'PENDING', 'RUNNING');
        await until('b hears what it missed', async () => heardB.some((r) => r.id === 'mvm-during'), 10_000);
        assert.equal(heardB.find((r) => r.id === 'mvm-during')?.state, 'RUNNING', 'as it is now');
      });
  });
}

// A suspended VM's published state on SQLite and Postgres: recorded only for the suspend it was made of, taken
// over by one host only, and never while a resume on its own host holds it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openTestStore, sampleRecord, STORE_BACKENDS } from '../../../../tests/support/store-backends.js';

const SUSPENDED_AT = '2026-12-04T10:00:00.000Z';
const suspended = (id: string) =>
  sampleRecord(id, { state: 'SUSPENDED', suspendedAt: SUSPENDED_AT, hostId: 'h1', qemuPid: null, netSlot: null });

for (const backend of STORE_BACKENDS) {
  describe(`suspended state in the blob store, on ${backend.name}`, () => {
    test('published only for the same suspend, while SUSPENDED', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM(suspended('mvm-1'));
      assert.equal(await store.publishSuspendedBlob('mvm-1', '2026-12-04T09:00:00.000Z', 'suspended/x/1'), false);
      assert.equal(await store.publishSuspendedBlob('mvm-1', SUSPENDED_AT, 'suspended/mvm-1/1'), true);
      assert.equal((await store.getMicroVM('mvm-1'))?.suspendedBlob, 'suspended/mvm-1/1');
      await store.insertMicroVM(sampleRecord('mvm-2', { state: 'RUNNING', suspendedAt: SUSPENDED_AT }));
      assert.equal(await store.publishSuspendedBlob('mvm-2', SUSPENDED_AT, 'suspended/mvm-2/1'), false);
    });

    test('one host takes a published VM over, with none of the old host uid, pid or slot', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM({ ...suspended('mvm-1'), jailUid: 200_001, suspendedBlob: 'suspended/mvm-1/1' });
      // which one wins is the database's: its first UPDATE
      const taken = await Promise.all([
        store.takeSuspendedMicroVM('mvm-1', 'h1', 'h2'),
        store.takeSuspendedMicroVM('mvm-1', 'h1', 'h3'),
      ]);
      const won = taken.filter((r) => r !== null);
      assert.equal(won.length, 1, 'exactly one wins');
      assert.deepEqual([won[0].jailUid, won[0].state], [null, 'SUSPENDED']);
      assert.equal(won[0].hostId, taken[0] ? 'h2' : 'h3');
      assert.equal(await store.takeSuspendedMicroVM('mvm-1', 'h1', 'h3'), null, 'no longer on h1');
      // never one whose state was not published
      await store.insertMicroVM(suspended('mvm-2'));
      assert.equal(await store.takeSuspendedMicroVM('mvm-2', 'h1', 'h2'), null);
    });

    test('a resume on its host holds it: no take-over, no late publish', async (t) => {
      const store = await openTestStore(backend, t);
      await store.insertMicroVM({ ...suspended('mvm-1'), suspendedBlob: 'suspended/mvm-1/1' });
      assert.equal(await store.holdSuspendedOnHost('mvm-1', 'h2'), false, 'not on h2');
      assert.equal(await store.holdSuspendedOnHost('mvm-1', 'h1'), true);
      assert.equal(await store.takeSuspendedMicroVM('mvm-1', 'h1', 'h2'), null);
      assert.equal(await store.publishSuspendedBlob('mvm-1', SUSPENDED_AT, 'suspended/mvm-1/2'), false);
      assert.equal((await store.getMicroVM('mvm-1'))?.suspendedBlob, '');
      // taken first, the host's own resume cannot hold it
      await store.insertMicroVM({ ...suspended('mvm-2'), suspendedBlob: 'suspended/mvm-2/1' });
      assert.ok(await store.takeSuspendedMicroVM('mvm-2', 'h1', 'h2'));
      assert.equal(await store.holdSuspendedOnHost('mvm-2', 'h1'), false);
    });
  });
}

// A down host's MicroVMs are terminated by whichever server is asked (host-gone.ts), touching nothing of that host's;
// the host, when it comes back, releases what they still held there (recovery.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { ErrorCode } from '@capsule/protocol';
import { LocalBlobStore } from '../blobs/blob-store.js';
import { TENANT, withLifecycle } from '../../../../tests/support/lifecycle-harness.js';
import { until } from '../../../../tests/support/until.js';

const RUN = { imageName: 'base' } as const;

test("a down host's failed and suspended VMs end on another server; back, the host frees what they held", async (t) => {
  const sharedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-shared-'));
  t.after(() => fs.rmSync(sharedDir, { recursive: true, force: true }));
  const shared = new LocalBlobStore(sharedDir);
  await withLifecycle({ sharedBlobs: shared }, async (h) => {
    const me = h.config.hostId;
    const lost = await h.service.run(TENANT, RUN);
    const parked = await h.service.run(TENANT, RUN);
    await h.service.suspend(TENANT, parked.id);
    await until('the suspended VM to let go', async () => (await h.store.getMicroVM(parked.id))?.netSlot === null);
    // its state published (as suspended-transfer.ts leaves it)
    const key = `suspended/${parked.id}/1`;
    await until('its state published', async () => (await h.store.getMicroVM(parked.id))?.suspendedBlob !== null);
    await h.store.updateMicroVM(parked.id, { suspendedBlob: key });
    await shared.put(`${key}/state`, Buffer.from('state'));
    const other = h.serverOn('h2');

    // while this host serves, its VMs are its own to end
    const past = new Date(Date.now() - 60_000).toISOString();
    await h.store.registerHost({
      id: me,
      advertiseUrl: 'http://h1.internal:7070',
      capacity: { vcpus: 2, memoryMib: 4096, diskMib: 10_000, accelerator: 'tcg', qemuVersion: '10.0.2' },
      heartbeatAt: past,
      leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
      instanceId: 'i-1',
    });
    await assert.rejects(other.terminate(TENANT, lost.id), { code: ErrorCode.MICROVM_ON_ANOTHER_HOST });

    // its lease runs out: another server marks it down and fails what it ran, as host-lease.ts does
    await h.store.renewHostLease(me, past, past);
    assert.equal(await h.store.markHostDown(me, new Date().toISOString()), true);
    await h.store.transition(lost.id, 'RUNNING', 'FAILED', { failureReason: `host ${me} lost` });
    const heldSlot = (await h.store.getMicroVM(lost.id))?.netSlot;
    assert.notEqual(heldSlot, null);

    for (const vm of [lost, parked]) {
      const ended = await other.terminate(TENANT, vm.id);
      assert.equal(ended.state, 'TERMINATED', vm.id);
      assert.notEqual(ended.terminatedAt, null);
    }
    await until('its published state dropped', async () => (await shared.head(`${key}/state`)) === null);
    // nothing of the down host's was touched here: its namespace is still its own, its files still there
    assert.equal((await h.store.getMicroVM(lost.id))?.netSlot, heldSlot);
    assert.equal(h.networks.holders.get(heldSlot!), lost.id);
    assert.equal(fs.existsSync(path.join(h.config.dataDir, 'suspended', parked.id)), true);
    // another tenant's key still finds nothing
    await assert.rejects(other.terminate('someone-else', lost.id), { code: ErrorCode.NOT_FOUND });

    // the host starts again: what its ended VMs held there goes
    await h.restart();
    const after = await h.store.getMicroVM(lost.id);
    assert.deepEqual([after?.state, after?.netSlot, after?.qemuPid], ['TERMINATED', null, null]);
    assert.equal(h.networks.holders.has(heldSlot!), false);
    assert.equal(fs.existsSync(path.join(h.config.dataDir, 'suspended', parked.id)), false);
  });
});

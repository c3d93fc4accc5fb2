// Suspend, resume and recovery without VMs (tests/support/lifecycle-harness.ts): what a VM holds comes
// back after a resume and after a server restart; a suspend answers before its process has gone, and
// the next operation waits for that; a suspend that fails keeps the VM running or says it
// is gone; a resume from a corrupt or missing state is FAILED with why; a restart takes back what is
// alive, completes a suspend that was published, and fails only what cannot be taken back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '@capsule/protocol';
import { gate, TENANT, withLifecycle } from '../../../../tests/support/lifecycle-harness.js';
import { until } from '../../../../tests/support/until.js';

const RUN = { imageName: 'base' } as const;

test('suspend frees the VM and its slot; resume brings back what it held', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    h.hypervisor.vmOf(vm.id).memory.counter = '41';
    const suspended = await h.service.suspend(TENANT, vm.id);
    assert.equal(suspended.state, 'SUSPENDED');
    assert.notEqual(suspended.suspendedAt, null);
    // its process and namespace go right after the answer
    await until('the suspended VM to let go', async () => {
      const record = await h.store.getMicroVM(vm.id);
      return record?.qemuPid === null && record.netSlot === null;
    });
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(h.networks.holders.size, 0);
    const resumed = await h.service.resume(TENANT, vm.id);
    assert.equal(resumed.state, 'RUNNING');
    assert.equal(resumed.suspendedAt, null);
    assert.equal(h.hypervisor.vmOf(vm.id).memory.counter, '41');
    // stale once resumed: removed right after the answer
    await until(
      'the stale state to go',
      async () => !fs.existsSync(path.join(h.config.dataDir, 'suspended', vm.id, 'state')),
    );
    assert.notEqual(resumed.netSlot, null);
  });
});

test('a suspend answers once durable; a resume or terminate right after waits for its process to go', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    const exiting = gate();
    h.hypervisor.afterSuspend = exiting.wait;
    assert.equal((await h.service.suspend(TENANT, vm.id)).state, 'SUSPENDED');
    assert.equal(h.hypervisor.running.length, 1, 'its process is still on its way out');
    const resumed = h.service.resume(TENANT, vm.id);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.hypervisor.launches.length, 1, 'the resume waits for it');
    exiting.open();
    assert.equal((await resumed).state, 'RUNNING');
    assert.equal(h.hypervisor.running.length, 1);

    const held = gate();
    h.hypervisor.afterSuspend = held.wait;
    await h.service.suspend(TENANT, vm.id);
    const terminated = h.service.terminate(TENANT, vm.id);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await h.store.getMicroVM(vm.id))?.state, 'SUSPENDED', 'the terminate waits too');
    held.open();
    assert.equal((await terminated).state, 'TERMINATED');
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(h.networks.holders.size, 0);
  });
});

test(
  'a suspend that fails with the VM still running leaves it RUNNING, untouched, and can be ' + 'tried again',
  async () => {
    await withLifecycle({}, async (h) => {
      const vm = await h.service.run(TENANT, RUN);
      h.hypervisor.vmOf(vm.id).memory.kept = 'yes';
      h.hypervisor.suspendFault = 'keeps-running';
      await assert.rejects(h.service.suspend(TENANT, vm.id), {
        code: ErrorCode.SUSPEND_FAILED,
        message: /it is still RUNNING: fake: no space left on device/,
      });
      const after = await h.service.get(TENANT, vm.id);
      assert.equal(after.state, 'RUNNING');
      assert.equal(h.networks.addressesOf(vm.id)?.slot, vm.netSlot);
      await (await h.service.agentFor(TENANT, vm.id, 'exec')).agent.ping();
      h.hypervisor.suspendFault = null;
      assert.equal((await h.service.suspend(TENANT, vm.id)).state, 'SUSPENDED');
      await h.service.resume(TENANT, vm.id);
      assert.equal(h.hypervisor.vmOf(vm.id).memory.kept, 'yes');
    });
  },
);

test('a suspend that loses the VM is FAILED with why, and keeps no files, slot or VM', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    h.hypervisor.suspendFault = 'dies';
    await assert.rejects(h.service.suspend(TENANT, vm.id), { code: ErrorCode.SUSPEND_FAILED });
    const after = await h.service.get(TENANT, vm.id);
    assert.equal(after.state, 'FAILED');
    assert.match(after.failureReason!, /^suspend failed after the VM stopped: fake: QMP socket closed/);
    assert.equal(h.networks.holders.size, 0);
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(fs.existsSync(path.join(h.config.dataDir, 'suspended', vm.id)), false);
  });
});

test('resume from a corrupt state or a missing one: FAILED with why; other VMs are unaffected', async () => {
  await withLifecycle({}, async (h) => {
    const corrupt = await h.service.run(TENANT, RUN);
    const missing = await h.service.run(TENANT, RUN);
    const bystander = await h.service.run(TENANT, RUN);
    await h.service.suspend(TENANT, corrupt.id);
    await h.service.suspend(TENANT, missing.id);
    fs.writeFileSync(path.join(h.config.dataDir, 'suspended', corrupt.id, 'state'), 'not a migration stream');
    fs.rmSync(path.join(h.config.dataDir, 'suspended', missing.id, 'state'));
    await assert.rejects(h.service.resume(TENANT, corrupt.id), {
      code: ErrorCode.RESUME_FAILED,
      message: /suspended state is corrupt; it is now FAILED/,
    });
    await assert.rejects(h.service.resume(TENANT, missing.id), {
      code: ErrorCode.RESUME_FAILED,
      message: /suspended state is missing; it is now FAILED/,
    });
    assert.match((await h.service.get(TENANT, corrupt.id)).failureReason!, /could not be loaded/);
    assert.match((await h.service.get(TENANT, missing.id)).failureReason!, /is gone \(missing state\)/);
    for (const id of [corrupt.id, missing.id])
      assert.equal(fs.existsSync(path.join(h.config.dataDir, 'suspended', id)), false);
    assert.equal((await h.service.get(TENANT, bystander.id)).state, 'RUNNING');
    assert.deepEqual(
      h.hypervisor.running.map((v) => v.options.hostname),
      [bystander.id],
    );
    assert.deepEqual([...h.networks.holders.values()], [bystander.id]);
  });
});

test('a resume that fails for a transient reason leaves the VM SUSPENDED and resumable', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    h.hypervisor.vmOf(vm.id).memory.n = '7';
    await h.service.suspend(TENANT, vm.id);
    h.networks.attachFault = new Error('no free network slot');
    await assert.rejects(h.service.resume(TENANT, vm.id), {
      code: ErrorCode.RESUME_FAILED,
      message: /still SUSPENDED and can be resumed again: no free network slot/,
    });
    assert.equal((await h.service.get(TENANT, vm.id)).state, 'SUSPENDED');
    await h.service.resume(TENANT, vm.id);
    assert.equal(h.hypervisor.vmOf(vm.id).memory.n, '7');
  });
});

test('restart: a running VM is taken back as it was, and a suspended one stays resumable', async () => {
  await withLifecycle({}, async (h) => {
    const kept = await h.service.run(TENANT, RUN);
    const asleep = await h.service.run(TENANT, RUN);
    h.hypervisor.vmOf(kept.id).memory.session = 'open';
    h.hypervisor.vmOf(asleep.id).memory.session = 'saved';
    await h.service.suspend(TENANT, asleep.id);
    const service = await h.restart();
    assert.equal((await service.get(TENANT, kept.id)).state, 'RUNNING');
    const { agent } = await service.agentFor(TENANT, kept.id, 'exec');
    await agent.ping(); // a new link to the same guest
    assert.equal(h.hypervisor.vmOf(kept.id).memory.session, 'open');
    assert.equal((await service.get(TENANT, asleep.id)).state, 'SUSPENDED');
    await service.resume(TENANT, asleep.id);
    assert.equal(h.hypervisor.vmOf(asleep.id).memory.session, 'saved');
  });
});

test('restart: a VM whose process died while no server ran is FAILED with why, and releases its slot', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    await h.service.shutdown(); // the server stops; the VM runs on
    h.hypervisor.vmOf(vm.id).crash(); // …then dies with no one watching
    const service = await h.restart();
    const after = await service.get(TENANT, vm.id);
    assert.equal(after.state, 'FAILED');
    assert.match(
      after.failureReason!,
      /server restarted while this MicroVM was RUNNING and its VM could not be taken back/,
    );
    assert.equal(h.networks.holders.size, 0);
  });
});

test('restart: a suspend cut short after its state was published is completed, not lost', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    h.hypervisor.vmOf(vm.id).memory.work = 'done';
    // the server died between publishing the state and recording SUSPENDED
    const dir = path.join(h.config.dataDir, 'suspended', vm.id);
    await h.hypervisor.vmOf(vm.id).suspend(dir);
    await h.store.transition(vm.id, 'RUNNING', 'SUSPENDING');
    const service = await h.restart();
    assert.equal((await service.get(TENANT, vm.id)).state, 'SUSPENDED');
    await service.resume(TENANT, vm.id);
    assert.equal(h.hypervisor.vmOf(vm.id).memory.work, 'done');
  });
});

test('restart: the hold of a resume cut short is released, so the VM can move again', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    await h.service.suspend(TENANT, vm.id);
    // the server died while resuming it here: its hold stayed
    assert.ok(await h.store.holdSuspendedOnHost(vm.id, h.config.hostId));
    assert.equal((await h.store.getMicroVM(vm.id))?.suspendedBlob, '');
    const service = await h.restart();
    assert.equal((await h.store.getMicroVM(vm.id))?.suspendedBlob, null);
    assert.equal((await service.resume(TENANT, vm.id)).state, 'RUNNING');
  });
});

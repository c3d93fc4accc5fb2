// The lifecycle without VMs (tests/support/lifecycle-harness.ts: real store, quotas and bookkeeping, a
// fake hypervisor and fake networks): launch, failures while launching, a VM dying underneath, quotas
// under concurrency, and terminate racing a boot or a resume. The e2e tests do the same with QEMU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { gate, TENANT, withLifecycle } from '../../../../tests/support/lifecycle-harness.js';
import { until } from '../../../../tests/support/until.js';

const RUN = { imageName: 'base' } as const;

test(
  'launch: RUNNING with its network attached; terminate: TERMINATED, VM stopped, slot and ' + 'files released',
  async () => {
    await withLifecycle({}, async (h) => {
      const vm = await h.service.run(TENANT, RUN);
      assert.equal(vm.state, 'RUNNING');
      assert.equal(vm.launchedFrom, 'boot');
      assert.notEqual(vm.netSlot, null);
      assert.equal(h.networks.holders.get(vm.netSlot!), vm.id);
      const running = h.hypervisor.vmOf(vm.id);
      assert.equal(vm.qemuPid, running.pid);
      await running.agent.ping(); // the agent link the service holds answers
      const done = await h.service.terminate(TENANT, vm.id);
      assert.equal(done.state, 'TERMINATED');
      assert.equal(done.netSlot, null);
      assert.equal(h.hypervisor.running.length, 0);
      assert.equal(h.networks.holders.size, 0);
      assert.equal(fs.existsSync(vm.vmDir!), false);
    });
  },
);

test('a launch that fails is FAILED with the reason, and holds no VM, slot or directory', async () => {
  await withLifecycle({}, async (h) => {
    h.hypervisor.beforeReady = async () => {
      throw new CapsuleError(ErrorCode.BOOT_TIMEOUT, 'guest agent not ready after 90000 ms', { step: 'agent ready' });
    };
    await assert.rejects(h.service.run(TENANT, RUN), { code: ErrorCode.BOOT_TIMEOUT });
    const [vm] = await h.store.listMicroVMs({ tenantId: TENANT, limit: 10 });
    assert.equal(vm.state, 'FAILED');
    assert.match(vm.failureReason!, /^BOOT_TIMEOUT: guest agent not ready/);
    assert.equal(vm.netSlot, null);
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(h.networks.holders.size, 0);
    assert.equal(fs.existsSync(vm.vmDir!), false);
  });
});

test('a network that cannot be attached fails the launch before any VM starts', async () => {
  await withLifecycle({}, async (h) => {
    h.networks.attachFault = new CapsuleError(ErrorCode.NETWORK_FAILED, 'no free network slot');
    await assert.rejects(h.service.run(TENANT, RUN), { code: ErrorCode.NETWORK_FAILED });
    assert.equal(h.hypervisor.launches.length, 0);
    const [vm] = await h.store.listMicroVMs({ tenantId: TENANT, limit: 10 });
    assert.equal(vm.state, 'FAILED');
  });
});

test('a VM that dies underneath is FAILED with why; its slot is released and the others run on', async () => {
  await withLifecycle({}, async (h) => {
    const doomed = await h.service.run(TENANT, RUN);
    const other = await h.service.run(TENANT, RUN);
    h.hypervisor.vmOf(doomed.id).crash('QEMU process killed by SIGKILL');
    const failed = await until('FAILED', async () => {
      const vm = await h.service.get(TENANT, doomed.id);
      return vm.state === 'FAILED' && vm;
    });
    assert.match(failed.failureReason!, /killed by SIGKILL; the VM's memory and processes are gone/);
    assert.equal(failed.qemuPid, null);
    assert.equal(h.networks.addressesOf(doomed.id), null);
    await assert.rejects(h.service.agentFor(TENANT, doomed.id, 'exec'), { code: ErrorCode.INVALID_STATE });
    assert.equal((await h.service.get(TENANT, other.id)).state, 'RUNNING');
    await (await h.service.agentFor(TENANT, other.id, 'exec')).agent.ping();
  });
});

test('quotas: concurrent launches never overshoot; 429 names the quota; a suspended VM frees its share', async () => {
  await withLifecycle({ quotas: { maxRunningMicroVMs: 2, maxVcpus: 100, maxMemoryMib: 100_000 } }, async (h) => {
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => h.service.run(TENANT, RUN)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 2);
    assert.equal(refused.length, 2);
    for (const r of refused) {
      assert.equal(r.reason.code, ErrorCode.QUOTA_EXCEEDED);
      assert.match(r.reason.message, /quota maxRunningMicroVMs exceeded: 2 in use \+ 1 requested > 2/);
    }
    assert.equal(h.hypervisor.running.length, 2);
    const first = (ok[0] as PromiseFulfilledResult<{ id: string }>).value;
    await h.service.suspend(TENANT, first.id);
    const third = await h.service.run(TENANT, RUN);
    assert.equal(third.state, 'RUNNING');
    // back at the quota: the suspended one cannot come back until another goes, and stays SUSPENDED
    await assert.rejects(h.service.resume(TENANT, first.id), {
      code: ErrorCode.QUOTA_EXCEEDED,
      message: /quota maxRunningMicroVMs exceeded: 2 in use \+ 1 requested > 2/,
    });
    assert.equal((await h.service.get(TENANT, first.id)).state, 'SUSPENDED');
    await h.service.terminate(TENANT, third.id);
    assert.equal((await h.service.resume(TENANT, first.id)).state, 'RUNNING');
  });
});

test("the host's room: concurrent launches of two tenants never overfill it; a resume waits for room", async () => {
  await withLifecycle({ config: { hostMaxMemoryMib: 1024 } }, async (h) => {
    await h.service.run(TENANT, { ...RUN, memoryMib: 512 });
    const others = await h.store.insertTenant({
      id: 'ten-b',
      name: 'b',
      quotas: {},
      createdAt: new Date().toISOString(),
    });
    assert.ok(others);
    const results = await Promise.allSettled(
      [TENANT, 'ten-b', 'ten-b'].map((tenant) => h.service.run(tenant, { ...RUN, memoryMib: 256 })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].reason.code, ErrorCode.HOST_FULL);
    assert.equal(refused[0].reason.status, 503);
    assert.match(
      refused[0].reason.message,
      /^host \S+ has no room: 1024 MiB of guest memory in use \+ 256 requested > 1024/,
    );
    const running = await h.store.listMicroVMsInStates(['RUNNING']);
    assert.equal(
      running.reduce((sum, vm) => sum + vm.memoryMib, 0),
      1024,
      'full, never over',
    );
    const small = running.find((vm) => vm.memoryMib === 256)!;
    await h.service.suspend(small.tenantId, small.id);
    await h.service.run(TENANT, { ...RUN, memoryMib: 256 }); // the suspended one's room, taken
    await assert.rejects(h.service.resume(small.tenantId, small.id), { code: ErrorCode.HOST_FULL });
    assert.equal((await h.service.get(small.tenantId, small.id)).state, 'SUSPENDED');
  });
});

test('a draining host admits no launch or resume (503 HOST_DRAINING); undrained, it does again', async () => {
  await withLifecycle({}, async (h) => {
    const capacity = { vcpus: 2, memoryMib: 4096, diskMib: 1000, accelerator: 'tcg', qemuVersion: '10.0.2' } as const;
    const lease = {
      heartbeatAt: new Date().toISOString(),
      leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
    };
    await h.store.registerHost({
      id: h.config.hostId,
      advertiseUrl: 'http://h:1',
      capacity,
      ...lease,
      instanceId: 'i1',
    });
    const vm = await h.service.run(TENANT, RUN);
    await h.service.suspend(TENANT, vm.id);
    await h.store.setHostDraining(h.config.hostId, true);
    await assert.rejects(h.service.run(TENANT, RUN), { code: ErrorCode.HOST_DRAINING, status: 503 });
    await assert.rejects(h.service.resume(TENANT, vm.id), { code: ErrorCode.HOST_DRAINING });
    assert.equal((await h.service.get(TENANT, vm.id)).state, 'SUSPENDED');
    await h.store.setHostDraining(h.config.hostId, false);
    assert.equal((await h.service.resume(TENANT, vm.id)).state, 'RUNNING');
  });
});

test('quotas: vCPUs and memory are summed over what the tenant holds', async () => {
  await withLifecycle({ quotas: { maxRunningMicroVMs: 10, maxVcpus: 3, maxMemoryMib: 100_000 } }, async (h) => {
    await h.service.run(TENANT, { ...RUN, vcpuCount: 2 });
    await assert.rejects(h.service.run(TENANT, { ...RUN, vcpuCount: 2 }), {
      code: ErrorCode.QUOTA_EXCEEDED,
      message: /quota maxVcpus exceeded: 2 in use \+ 2 requested > 3/,
    });
    assert.equal((await h.service.run(TENANT, { ...RUN, vcpuCount: 1 })).state, 'RUNNING');
  });
});

test('terminate during boot: answered TERMINATING at once; the launch ends TERMINATED and leaves nothing', async () => {
  await withLifecycle({}, async (h) => {
    const booting = gate();
    h.hypervisor.beforeReady = async () => {
      booting.arrive();
      await booting.wait;
    };
    const launch = h.service.run(TENANT, RUN);
    await booting.reached;
    const [pending] = await h.store.listMicroVMs({ tenantId: TENANT, limit: 10 });
    assert.equal(pending.state, 'PENDING');
    const terminating = await h.service.terminate(TENANT, pending.id);
    assert.equal(terminating.state, 'TERMINATING');
    booting.open();
    const ended = await launch;
    assert.equal(ended.state, 'TERMINATED');
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(h.networks.holders.size, 0);
    assert.equal(fs.existsSync(pending.vmDir!), false);
  });
});

test('terminate during a resume waits for it, then ends the VM: TERMINATED, nothing left', async () => {
  await withLifecycle({}, async (h) => {
    const vm = await h.service.run(TENANT, RUN);
    await h.service.suspend(TENANT, vm.id);
    const resuming = gate();
    h.hypervisor.beforeReady = async () => {
      resuming.arrive();
      await resuming.wait;
    };
    const resume = h.service.resume(TENANT, vm.id);
    await resuming.reached;
    const terminate = h.service.terminate(TENANT, vm.id);
    // a second resume or a suspend meanwhile is refused, not queued
    await assert.rejects(h.service.suspend(TENANT, vm.id), { code: ErrorCode.INVALID_STATE, message: /in progress/ });
    resuming.open();
    assert.equal((await resume).state, 'RUNNING');
    assert.equal((await terminate).state, 'TERMINATED');
    assert.equal(h.hypervisor.running.length, 0);
    assert.equal(h.networks.holders.size, 0);
    assert.equal(fs.existsSync(`${h.config.dataDir}/suspended/${vm.id}`), false);
  });
});

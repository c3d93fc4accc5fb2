// Idle policy and maximum duration, enforced on real VMs: auto-suspend when idle, auto-resume on the
// next exec, terminate after suspendedDurationSeconds, terminate at maximumDurationSeconds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Capsule, MicroVM, MicroVMState } from '@capsule/sdk';
import { errorOf, qemuProcesses, useTestServer } from './helpers.js';
import { until } from '../support/until.js';

async function waitForState(capsule: Capsule, vm: MicroVM, state: MicroVMState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // list, not get: a GET of the VM is activity and would keep it awake
  while (Date.now() < deadline) {
    const { microvms } = await capsule.microvms.list({ state });
    if (microvms.some((v) => v.id === vm.id)) return;
    await sleep(250);
  }
  throw new Error(`${vm.id} did not become ${state} within ${timeoutMs} ms`);
}

describe('lifecycle policy', () => {
  const server = useTestServer();

  test('idle → SUSPENDED; the next exec resumes it with its state; a running exec is not idle', async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'base', idlePolicy: { maxIdleDurationSeconds: 2 } });
    assert.deepEqual(vm.info.idlePolicy, {
      maxIdleDurationSeconds: 2,
      suspendedDurationSeconds: 0,
      autoResumeEnabled: true,
    });
    await vm.exec('echo kept > /root/state.txt');
    const long = await vm.exec('sleep 4; echo done');
    assert.equal(long.stdout, 'done\n', 'not suspended under a running command');
    await waitForState(server().capsule, vm, 'SUSPENDED', 15_000);
    // a suspend answers once its state is durable; QEMU quits right after (at most its 2 s quit grace, then killed)
    await until('its QEMU to be gone', async () => qemuProcesses(vm.id).length === 0, 5_000);
    const result = await vm.exec(['cat', '/root/state.txt']);
    assert.equal(result.stdout, 'kept\n');
    assert.equal((await vm.refresh()).state, 'RUNNING');
  });

  test('parallel requests to a SUSPENDED VM share one auto-resume and all succeed', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.exec('echo 1 > /root/one');
    await vm.suspend();
    const results = await Promise.all([
      vm.exec(['cat', '/root/one']),
      vm.exec('echo two'),
      vm.files.readText('/root/one'),
      vm.exec(['hostname']),
    ]);
    assert.deepEqual(
      results.map((r) => (typeof r === 'string' ? r : r.stdout)),
      ['1\n', 'two\n', '1\n', `${vm.id}\n`],
    );
    assert.equal((await vm.refresh()).state, 'RUNNING');
  });

  test('without auto-resume, exec on a SUSPENDED VM is 409', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base', idlePolicy: { autoResumeEnabled: false } });
    await vm.suspend();
    const error = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }));
    assert.deepEqual([error.status, error.code], [409, 'INVALID_STATE']);
  });

  test('suspendedDurationSeconds terminates a suspended VM; maximumDurationSeconds ends a running one', async () => {
    const parked = await server().capsule.microvms.run({
      imageName: 'base',
      idlePolicy: { suspendedDurationSeconds: 2 },
    });
    await parked.suspend();
    const capped = await server().capsule.microvms.run({ imageName: 'base', maximumDurationSeconds: 4 });
    await waitForState(server().capsule, parked, 'TERMINATED', 15_000);
    await waitForState(server().capsule, capped, 'TERMINATED', 15_000);
    assert.deepEqual(qemuProcesses(capped.id), []);
  });
});

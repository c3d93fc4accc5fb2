// The system quota: system VMs wait for a slot and for memory, first come first served; one that could
// never fit fails at once; what is held and waiting is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { SystemVms } from './system-vms.js';
import { SYSTEM_TENANT, type VmJail } from './jail/jailer.js';

/** Records the jails asked for: every system VM runs under the system's cgroup level. */
const jails: Array<{ tenant: string; owner: string }> = [];
const jailer = {
  withJail<T>(tenant: string, owner: string, task: (jail: VmJail | null) => Promise<T>): Promise<T> {
    jails.push({ tenant, owner });
    return task(null);
  },
};

/** A task that runs until its `finish` is called. */
function held(): { task: (jail: VmJail | null) => Promise<void>; started: Promise<void>; finish: () => void } {
  let finish!: () => void;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { task: () => (markStarted(), done), started, finish };
}

test(
  'system VMs: at most maxVms at once and maxMemoryMib between them; waiters go in order; too large fails at ' + 'once',
  async () => {
    const system = new SystemVms({ maxVms: 2, maxMemoryMib: 3072 }, jailer);
    const a = held();
    const b = held();
    const c = held();
    const runA = system.run('build a', 2048, 'build-a', a.task);
    await a.started;
    const runB = system.run('snapshot b', 2048, 'snapshot-b', b.task); // a slot is free, the memory is not
    const runC = system.run('snapshot c', 512, 'snapshot-c', c.task);
    await sleep(20);
    assert.deepEqual(system.usage(), { vms: 1, memoryMib: 2048, waiting: 2 }, 'b waits for memory, c for b (in order)');
    a.finish();
    await runA;
    await b.started;
    await c.started;
    assert.deepEqual(system.usage(), { vms: 2, memoryMib: 2560, waiting: 0 });
    b.finish();
    c.finish();
    await Promise.all([runB, runC]);
    assert.deepEqual(system.usage(), { vms: 0, memoryMib: 0, waiting: 0 });

    const failing = system.run('a failing build', 1024, 'build-f', async () => {
      throw new Error('boom');
    });
    await assert.rejects(failing, /boom/);
    assert.deepEqual(system.usage(), { vms: 0, memoryMib: 0, waiting: 0 }, 'a failure gives its room back');

    const huge = await system
      .run('the build of big version 1', 4096, 'build-big', async () => undefined)
      .catch((err: unknown) => err);
    assert.ok(huge instanceof CapsuleError && huge.code === ErrorCode.QUOTA_EXCEEDED, String(huge));
    assert.deepEqual(
      jails,
      ['build-a', 'snapshot-b', 'snapshot-c', 'build-f'].map((owner) => ({ tenant: SYSTEM_TENANT, owner })),
      'each admitted VM got a system jail; the one that never fit got none',
    );
    assert.match(
      huge.message,
      new RegExp(
        String.raw`needs a VM of 4096 MiB, and system VMs may hold at most 3072 MiB in 2 VMs ` +
          String.raw`\(CAPSULE_SYSTEM_MEMORY_MIB, CAPSULE_SYSTEM_VMS\)`,
      ),
    );
  },
);

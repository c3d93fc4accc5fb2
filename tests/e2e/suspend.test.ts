// Suspend and resume: the QEMU process goes away, and the VM comes back with the same processes,
// memory and files — a live counter keeps counting from where it was.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidStateError } from '@capsule/sdk';
import { errorOf, qemuProcesses, useTestServer } from './helpers.js';

const CYCLES = Number(process.env.CAPSULE_SUSPEND_CYCLES ?? 50);

describe('suspend and resume', () => {
  const server = useTestServer();

  test(`${CYCLES} suspend/resume cycles keep a live counter process and files`, async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'python' });
    assert.equal(vm.info.launchedFrom, 'snapshot');
    // written whole (temp file + rename): a read between a truncate and a write would see 0
    await vm.execBackground([
      'python3',
      '-c',
      'import os, time, itertools\nfor i in itertools.count():\n    open("/tmp/n.tmp", "w").write(str(i)); ' +
        'os.replace("/tmp/n.tmp", "/tmp/n"); time.sleep(0.05)',
    ]);
    const counter = async (): Promise<number> => Number((await vm.exec(['cat', '/tmp/n'])).stdout);
    await new Promise((r) => setTimeout(r, 500));
    let last = await counter();
    const pid = (await vm.exec(['pgrep', '-f', 'itertools'])).stdout.trim();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await vm.files.write(`/root/cycle-${cycle}.txt`, `written before suspend ${cycle}`);
      assert.equal((await vm.suspend()).state, 'SUSPENDED');
      assert.deepEqual(qemuProcesses(vm.id), [], 'a SUSPENDED VM has no QEMU process');
      // launched from a snapshot: only RAM that differs from it is written (a whole-RAM save is ~150 MiB)
      const stateBytes = fs.statSync(path.join(server().dataDir, 'suspended', vm.id, 'state')).size;
      assert.ok(stateBytes < 64 * 2 ** 20, `suspended state is ${stateBytes} bytes`);
      assert.equal((await vm.resume()).state, 'RUNNING');
      const now = await counter();
      assert.ok(now >= last, `counter went backwards: ${last} → ${now} (cycle ${cycle})`);
      last = now;
      for (let earlier = 0; earlier <= cycle; earlier++) {
        assert.equal(await vm.files.readText(`/root/cycle-${earlier}.txt`), `written before suspend ${earlier}`);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.ok((await counter()) > last, 'the counter keeps counting after the last resume');
    assert.equal((await vm.exec(['pgrep', '-f', 'itertools'])).stdout.trim(), pid, 'same process, not a restart');
    const clock = Number((await vm.exec(['date', '+%s'])).stdout);
    assert.ok(Math.abs(clock - Date.now() / 1000) < 10, 'clock set from the host after resume');
  });

  test('illegal transitions are 409 INVALID_STATE; a terminated suspended VM leaves nothing', async () => {
    // without auto-resume, so that exec on the SUSPENDED VM is refused rather than resuming it
    const vm = await server().capsule.microvms.run({ imageName: 'base', idlePolicy: { autoResumeEnabled: false } });
    await assert.rejects(
      vm.resume(),
      (err: Error) => err instanceof InvalidStateError && /it is RUNNING/.test(err.message),
    );
    await vm.suspend();
    await assert.rejects(
      vm.suspend(),
      (err: Error) => err instanceof InvalidStateError && /it is SUSPENDED/.test(err.message),
    );
    const exec = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }));
    assert.deepEqual([exec.status, exec.code], [409, 'INVALID_STATE']);
    assert.ok(fs.existsSync(path.join(server().dataDir, 'suspended', vm.id, 'state')));
    assert.equal((await vm.terminate()).state, 'TERMINATED');
    assert.equal(fs.existsSync(path.join(server().dataDir, 'suspended', vm.id)), false);
  });

  test('resume with corrupt or missing state: FAILED with a reason, other VMs unaffected', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => server().capsule.microvms.run({ imageName: 'base' })));
    await Promise.all([a.suspend(), b.suspend(), c.suspend()]);
    fs.writeFileSync(path.join(server().dataDir, 'suspended', a.id, 'state'), 'garbage');
    fs.rmSync(path.join(server().dataDir, 'suspended', b.id, 'state'));
    const corrupt = await errorOf(await server().api('POST', `/v1/microvms/${a.id}/resume`));
    assert.deepEqual([corrupt.status, corrupt.code], [502, 'RESUME_FAILED']);
    const missing = await errorOf(await server().api('POST', `/v1/microvms/${b.id}/resume`));
    assert.deepEqual([missing.status, missing.code], [502, 'RESUME_FAILED']);
    assert.equal((await a.refresh()).state, 'FAILED');
    assert.match((await b.refresh()).failureReason ?? '', /suspended state is gone/);
    assert.equal((await c.resume()).state, 'RUNNING');
    assert.equal((await c.exec('echo alive')).stdout, 'alive\n');
    assert.deepEqual([...qemuProcesses(a.id), ...qemuProcesses(b.id)], []);
  });

  test('terminate racing a suspend or a resume in flight: TERMINATED, nothing left behind', async () => {
    const [a, b] = await Promise.all([0, 1].map(() => server().capsule.microvms.run({ imageName: 'base' })));
    await b.suspend();
    const [suspended, terminatedA] = await Promise.allSettled([a.suspend(), a.terminate()]);
    const [resumed, terminatedB] = await Promise.allSettled([b.resume(), b.terminate()]);
    for (const [vm, transition, terminated] of [
      [a, suspended, terminatedA],
      [b, resumed, terminatedB],
    ] as const) {
      assert.equal(terminated.status, 'fulfilled', String((terminated as PromiseRejectedResult).reason));
      // the transition either finished before terminate took over, or was refused because of it
      if (transition.status === 'rejected')
        assert.ok(transition.reason instanceof InvalidStateError, String(transition.reason));
      assert.equal((await vm.refresh()).state, 'TERMINATED');
      assert.deepEqual(qemuProcesses(vm.id), []);
      assert.equal(fs.existsSync(path.join(server().dataDir, 'suspended', vm.id)), false);
      assert.equal(fs.existsSync(path.join(server().dataDir, 'vms', vm.id)), false);
    }
  });
});

// Suspend and resume: the QEMU process goes away, and the VM comes back with the same processes,
// memory and files — a live counter keeps counting from where it was.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidStateError, type MicroVM } from '@capsule/sdk';
import { savedIgnoringShared } from '@capsule/server/internals';
import { errorOf, qemuProcesses, useTestServer } from './helpers.js';
import { until } from '../support/until.js';

const CYCLES = Number(process.env.CAPSULE_SUSPEND_CYCLES ?? 50);

/** Holds 8 MiB of random bytes; writes their hash to /tmp/held-0 now and to /tmp/held-N on each SIGUSR1. */
const MEMORY_HOLDER = [
  'import hashlib, os, signal, time',
  'held = bytearray(8 << 20)',
  'open("/dev/urandom", "rb", buffering=0).readinto(held)', // straight into it: no second copy dirtied
  'n = [0]',
  'def report(*_):',
  '    open("/tmp/held.tmp", "w").write(hashlib.sha256(held).hexdigest())',
  '    os.replace("/tmp/held.tmp", "/tmp/held-%d" % n[0]); n[0] += 1',
  'signal.signal(signal.SIGUSR1, report)',
  'report()',
  'while True: time.sleep(3600)',
].join('\n');

/** The text of `file` in the VM once it exists (the memory holder writes it whole). */
function written(vm: MicroVM, file: string): Promise<string> {
  return until(file, () => vm.files.readText(file).catch(() => undefined), 30_000);
}

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
    // 8 MiB of random memory held by a process, hashed now and again (on SIGUSR1) after the last resume
    await vm.execBackground(['python3', '-c', MEMORY_HOLDER]);
    const heldHash = await written(vm, '/tmp/held-0');
    const counter = async (): Promise<number> => Number((await vm.exec(['cat', '/tmp/n'])).stdout);
    await new Promise((r) => setTimeout(r, 500));
    let last = await counter();
    const pid = (await vm.exec(['pgrep', '-f', 'itertools'])).stdout.trim();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await vm.files.write(`/root/cycle-${cycle}.txt`, `written before suspend ${cycle}`);
      assert.equal((await vm.suspend()).state, 'SUSPENDED');
      // it answers once the state is durable; its QEMU exits right after
      await until('its QEMU to exit', async () => qemuProcesses(vm.id).length === 0, 5000);
      // launched from a snapshot: only the pages it dirtied are written, read by the server (over the
      // base: the state says x-ignore-shared, as the snapshot's does), never all of RAM
      const statePath = path.join(server().dataDir, 'suspended', vm.id, 'state');
      const stateBytes = fs.statSync(statePath).size;
      assert.ok(stateBytes < 64 * 2 ** 20, `suspended state is ${stateBytes} bytes`);
      assert.ok(savedIgnoringShared(statePath), 'the state was written over the base memory');
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
    await vm.exec(['pkill', '-USR1', '-f', 'held-']);
    assert.equal(await written(vm, '/tmp/held-1'), heldHash, 'the memory a process holds is intact');
    const clock = Number((await vm.exec(['date', '+%s'])).stdout);
    assert.ok(Math.abs(clock - Date.now() / 1000) < 10, 'clock set from the host after resume');
  });

  test("a suspended VM's state is bounded by the memory it dirtied", async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'python' });
    const statePath = path.join(server().dataDir, 'suspended', vm.id, 'state');
    // two processes alike but for what they hold: the second one's state grows by what it holds, and by
    // its own interpreter's heap (the files it reads are in the page cache already)
    const hold = async (mib: number, tag: string): Promise<number> => {
      const script = MEMORY_HOLDER.replace('8 << 20', `${mib} << 20`).replaceAll('/tmp/held', `/tmp/${tag}`);
      await vm.execBackground(['python3', '-c', script]);
      await written(vm, `/tmp/${tag}-0`);
      await vm.suspend();
      const bytes = fs.statSync(statePath).size;
      await vm.resume();
      return bytes;
    };
    const small = await hold(1, 'small');
    assert.ok(small < 48 * 2 ** 20, `a clone running one small process has a ${small}-byte state`);
    const heldMib = 32;
    const grownMib = ((await hold(heldMib, 'big')) - small) / 2 ** 20;
    assert.ok(grownMib >= heldMib - 1 && grownMib < heldMib + 10, `the state grew ${grownMib.toFixed(1)} MiB`);
    await vm.exec(['pkill', '-USR1', '-f', 'big-']);
    assert.equal(await written(vm, '/tmp/big-1'), await vm.files.readText('/tmp/big-0'));
    await vm.terminate();
  });

  test("a clone without its base state (launched by an older server) suspends through QEMU's stream", async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'python' });
    await vm.exec('echo kept > /root/mark');
    fs.rmSync(path.join(server().dataDir, 'vms', vm.id, 'base-state'));
    await vm.suspend();
    const statePath = path.join(server().dataDir, 'suspended', vm.id, 'state');
    assert.equal(savedIgnoringShared(statePath), false, "QEMU's own stream, filtered against the base memory");
    assert.ok(fs.statSync(statePath).size < 64 * 2 ** 20, 'still only what differs from the base');
    await vm.resume();
    assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'kept\n');
    await vm.suspend(); // and again, from where the first suspend put its disk
    await vm.resume();
    assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'kept\n');
    await vm.terminate();
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

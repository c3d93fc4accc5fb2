// kill -9 at each step of a suspend (CAPSULE_TEST_HALT_SUSPEND holds the suspend there): of the server,
// then of QEMU. Whatever dies where, the VM is RUNNING or completely SUSPENDED with everything it had —
// except a QEMU killed before its memory was saved, which takes the memory with it: FAILED, with a reason
// and nothing left behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Capsule, MicroVM } from '@capsule/sdk';
import { SUSPEND_STEPS, type SuspendStep } from '@capsule/protocol';
import { qemuProcesses, serveProcess, serveSetup, stopProcess } from './helpers.js';
import { until } from '../support/until.js';

const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i > /tmp/n.tmp; mv /tmp/n.tmp /tmp/n; sleep 0.1; done';

/** A server whose suspends wait `haltMs` at `step`, logging to a file we read to know it is there. */
async function haltingServer(step: SuspendStep, haltMs: number) {
  const { dataDir, port } = await serveSetup(`capsule-step-${step}-`);
  const logFile = path.join(dataDir, 'server.log');
  const env = { CAPSULE_TEST_HALT_SUSPEND: `${step}:${haltMs}` };
  const { child, capsule } = await serveProcess(dataDir, port, { env, logFile });
  return { dataDir, port, logFile, child, capsule };
}

/** A VM with a file on disk and a live counter process, suspending and held at the step. */
async function suspendingVm(capsule: Capsule, logFile: string): Promise<{ vm: MicroVM; counterPid: string }> {
  const vm = await capsule.microvms.run({ imageName: 'base' });
  await vm.exec('echo survived > /root/mark');
  await vm.execBackground(['sh', '-c', COUNTER]);
  await until(
    'the counter',
    async () => (await vm.exec('cat /tmp/n 2>/dev/null || true')).stdout.trim() !== '',
    60_000,
  );
  const counterPid = (await vm.exec(['pgrep', '-f', 'mv /tmp/n.tmp'])).stdout.trim();
  void vm.suspend().catch(() => undefined);
  await until('the halt', async () => fs.readFileSync(logFile, 'utf8').includes('suspend halted for a test'), 60_000);
  return { vm, counterPid };
}

/** It has its file and the same counter process, still counting. */
async function assertIntact(vm: MicroVM, counterPid: string): Promise<void> {
  assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'survived\n');
  assert.equal((await vm.exec(['pgrep', '-f', 'mv /tmp/n.tmp'])).stdout.trim(), counterPid, 'the same process');
  const before = Number((await vm.exec(['cat', '/tmp/n'])).stdout);
  await sleep(500);
  assert.ok(Number((await vm.exec(['cat', '/tmp/n'])).stdout) > before, 'it keeps counting');
}

async function cleanUp(dataDir: string, child: import('node:child_process').ChildProcess): Promise<void> {
  await stopProcess(child, 'SIGKILL');
  for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
}

for (const step of SUSPEND_STEPS) {
  // before the state is published the VM goes on RUNNING after a restart; once published, it is SUSPENDED
  const expected = step === 'published' ? 'SUSPENDED' : 'RUNNING';
  test(`server killed -9 at suspend step "${step}": ${expected} after restart, nothing lost`, async () => {
    const first = await haltingServer(step, 600_000);
    let server = first.child;
    try {
      const { vm, counterPid } = await suspendingVm(first.capsule, first.logFile);
      await stopProcess(server, 'SIGKILL');
      let capsule: Capsule;
      ({ child: server, capsule } = await serveProcess(first.dataDir, first.port));
      const again = await capsule.microvms.get(vm.id);
      assert.equal(again.info.state, expected, again.info.failureReason ?? '');
      const suspendDir = path.join(first.dataDir, 'suspended', vm.id);
      assert.equal(fs.existsSync(path.join(suspendDir, 'state.partial')), false, 'no partial state is left');
      if (expected === 'SUSPENDED') {
        assert.deepEqual(qemuProcesses(vm.id), [], 'the QEMU a suspended VM left is gone');
        await again.resume();
      }
      await assertIntact(again, counterPid);
      await again.terminate();
      assert.deepEqual(qemuProcesses(first.dataDir), []);
    } finally {
      await cleanUp(first.dataDir, server);
    }
  });
}

for (const step of SUSPEND_STEPS) {
  // QEMU holds the only copy of the RAM until the state is saved
  const expected = step === 'paused' ? 'FAILED' : 'SUSPENDED';
  test(`QEMU killed -9 at suspend step "${step}": ${expected}`, async () => {
    const { dataDir, logFile, child, capsule } = await haltingServer(step, 3000);
    try {
      const { vm, counterPid } = await suspendingVm(capsule, logFile);
      const [pid] = qemuProcesses(vm.id);
      process.kill(pid, 'SIGKILL');
      await until(
        'the suspend to end',
        async () => !['RUNNING', 'SUSPENDING'].includes((await vm.refresh()).state),
        60_000,
      );
      const info = await vm.refresh();
      assert.equal(info.state, expected, info.failureReason ?? '');
      if (expected === 'FAILED') {
        assert.ok(info.failureReason, 'it says why');
        assert.equal(fs.existsSync(path.join(dataDir, 'suspended', vm.id)), false, 'nothing is left');
      } else {
        await vm.resume();
        await assertIntact(vm, counterPid);
        await vm.terminate();
      }
      assert.deepEqual(qemuProcesses(dataDir), []);
    } finally {
      await cleanUp(dataDir, child);
    }
  });
}

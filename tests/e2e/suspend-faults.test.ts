// Faults around suspend: a full disk, QEMU killed mid-suspend, the server killed mid-suspend. Each ends
// in a whole state — the VM still running, or a complete saved state — never half of one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorOf, qemuProcesses, serveProcess, serveSetup, stopProcess, useTestServer } from './helpers.js';

describe('suspend faults', () => {
  const server = useTestServer();

  test('disk full during suspend: SUSPEND_FAILED, the VM stays RUNNING with everything, no partial files', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.exec('echo still-here > /root/mark; head -c 16777216 /dev/urandom > /tmp/dirty');
    const suspended = path.join(server().dataDir, 'suspended');
    fs.mkdirSync(suspended, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0711', 'tmpfs', suspended]);
    try {
      const error = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/suspend`));
      assert.deepEqual([error.status, error.code], [503, 'SUSPEND_FAILED']);
      assert.match(error.message, /still RUNNING/);
      assert.equal((await vm.refresh()).state, 'RUNNING');
      assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'still-here\n');
      const left = fs.existsSync(path.join(suspended, vm.id)) ? fs.readdirSync(path.join(suspended, vm.id)) : [];
      assert.deepEqual(
        left.filter((f) => f.startsWith('state')),
        [],
        'no partial state file',
      );
    } finally {
      execFileSync('umount', [suspended]);
    }
    assert.equal((await vm.suspend()).state, 'SUSPENDED', 'with room again, the suspend works');
    assert.equal((await vm.resume()).state, 'RUNNING');
    assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'still-here\n');
  });

  test('QEMU killed while SUSPENDING: the VM is FAILED with a reason and nothing is left', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.exec('head -c 33554432 /dev/urandom > /tmp/dirty');
    const [pid] = qemuProcesses(vm.id);
    const suspending = server().api('POST', `/v1/microvms/${vm.id}/suspend`);
    await sleep(150);
    process.kill(pid, 'SIGKILL');
    const response = await suspending;
    const info = await vm.refresh();
    if (response.ok) {
      // the save finished before the kill landed: then it must be a complete, resumable suspend
      assert.equal(info.state, 'SUSPENDED');
      assert.equal((await vm.resume()).state, 'RUNNING');
    } else {
      assert.equal(info.state, 'FAILED');
      assert.ok(info.failureReason && info.failureReason.length > 0);
      assert.equal(fs.existsSync(path.join(server().dataDir, 'suspended', vm.id)), false);
    }
    assert.deepEqual(
      qemuProcesses(vm.id).filter((p) => p === pid),
      [],
    );
  });
});

test('server killed -9 mid-suspend: after restart the VM is RUNNING or SUSPENDED, and usable', async () => {
  const { dataDir, port } = await serveSetup('capsule-midsuspend-');
  let { child: server, capsule } = await serveProcess(dataDir, port);
  try {
    const vm = await capsule.microvms.run({ imageName: 'base' });
    await vm.exec('echo survived > /root/mark; head -c 33554432 /dev/urandom > /tmp/dirty');
    const pending = vm.suspend().catch(() => undefined);
    await sleep(200);
    await stopProcess(server, 'SIGKILL');
    await pending;
    ({ child: server, capsule } = await serveProcess(dataDir, port));
    const info = await vm.refresh();
    assert.ok(
      info.state === 'RUNNING' || info.state === 'SUSPENDED',
      `state after restart: ${info.state} ${info.failureReason ?? ''}`,
    );
    if (info.state === 'SUSPENDED') await vm.resume();
    assert.equal((await vm.exec(['cat', '/root/mark'])).stdout, 'survived\n');
    await vm.terminate();
    assert.deepEqual(qemuProcesses(dataDir), []);
  } finally {
    await stopProcess(server, 'SIGKILL');
    for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// A suspend that finds the disk full: the VM still running, never half a state. (QEMU or the server
// killed at each step of a suspend: suspend-steps.test.ts.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { errorOf, qemuProcesses, useTestServer } from './helpers.js';

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

  test('a suspend directory on another filesystem than the disk: FAILED with the reason, no QEMU left', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    const suspended = path.join(server().dataDir, 'suspended');
    fs.mkdirSync(suspended, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0711', 'tmpfs', suspended]);
    try {
      // the state is saved there, then the disk cannot follow it by rename: the VM cannot go on
      const error = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/suspend`));
      assert.equal(error.code, 'SUSPEND_FAILED');
      const info = await vm.refresh();
      assert.equal(info.state, 'FAILED');
      assert.match(info.failureReason ?? '', /cross-device|EXDEV/);
      assert.deepEqual(qemuProcesses(vm.id), []);
    } finally {
      execFileSync('umount', [suspended]);
    }
  });
});

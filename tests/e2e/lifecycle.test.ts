// Lifecycle and isolation across VMs: two at once, terminate, list/filter, state errors, kill -9 of QEMU.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidStateError } from '@capsule/sdk';
import { AGENT_PROCESS, errorOf, qemuProcesses, useTestServer, vmDirs } from './helpers.js';

describe('MicroVM lifecycle', () => {
  const server = useTestServer();

  test('two VMs at once are isolated from each other and from the host', async () => {
    const [a, b] = await Promise.all([
      server().capsule.microvms.run({ imageName: 'base', metadata: { team: 'a' } }),
      server().capsule.microvms.run({ imageName: 'base', metadata: { team: 'b' } }),
    ]);
    try {
      assert.notEqual(a.id, b.id);
      assert.equal((await a.exec('echo secret-a > /root/only-in-a && hostname')).stdout.trim(), a.id);
      assert.equal((await b.exec(['test', '-e', '/root/only-in-a'])).exitCode, 1);
      assert.equal(fs.existsSync('/root/only-in-a'), false);
      assert.equal((await a.exec(['cat', '/root/only-in-a'])).stdout, 'secret-a\n');
      const listed = await server().capsule.microvms.list({ metadata: { team: 'b' } });
      assert.deepEqual(
        listed.microvms.map((vm) => vm.id),
        [b.id],
      );
      const running = await server().capsule.microvms.list({ state: 'RUNNING', imageName: 'base' });
      assert.equal(running.microvms.length, 2);
      const page = await server().capsule.microvms.list({ limit: 1 });
      assert.equal(page.microvms.length, 1);
      assert.ok(page.nextToken);
    } finally {
      await Promise.all([a.terminate(), b.terminate()]);
    }
    assert.equal((await a.refresh()).state, 'TERMINATED');
    assert.deepEqual(vmDirs(server().dataDir), []);
  });

  test('exec and terminate on a terminated VM are 409 INVALID_STATE', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.terminate();
    await assert.rejects(
      vm.exec('true'),
      (err: Error) => err instanceof InvalidStateError && /it is TERMINATED/.test(err.message),
    );
    const again = await errorOf(await server().api('DELETE', `/v1/microvms/${vm.id}`));
    assert.deepEqual([again.status, again.code], [409, 'INVALID_STATE']);
    const exec = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }));
    assert.deepEqual([exec.status, exec.code], [409, 'INVALID_STATE']);
  });

  test("kill -9 of a VM's QEMU process: the MicroVM becomes FAILED with a reason and is cleaned up", async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    const [pid] = qemuProcesses(vm.id);
    assert.ok(pid, 'QEMU process found');
    process.kill(pid, 'SIGKILL');
    let info = await vm.refresh();
    for (let i = 0; i < 100 && info.state !== 'FAILED'; i++) {
      await sleep(100);
      info = await vm.refresh();
    }
    assert.equal(info.state, 'FAILED');
    assert.match(info.failureReason ?? '', /QEMU process killed by SIGKILL/);
    assert.deepEqual(qemuProcesses(vm.id), []);
    assert.deepEqual(vmDirs(server().dataDir), []);
    const exec = await errorOf(await server().api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }));
    assert.deepEqual([exec.status, exec.code], [409, 'INVALID_STATE']);
    assert.equal((await vm.terminate()).state, 'TERMINATED');
  });

  test('an agent that stops answering gives AGENT_UNREACHABLE, and terminate still cleans up', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    await vm.execBackground(['sh', '-c', `sleep 0.3; kill -STOP $(pgrep -f '${AGENT_PROCESS}')`]);
    await sleep(1500);
    const started = Date.now();
    const res = await server().api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
    const error = await errorOf(res);
    assert.deepEqual([error.status, error.code], [502, 'AGENT_UNREACHABLE']);
    assert.ok(Date.now() - started < 60_000);
    assert.equal((await vm.terminate()).state, 'TERMINATED');
    assert.deepEqual(qemuProcesses(vm.id), []);
  });
});

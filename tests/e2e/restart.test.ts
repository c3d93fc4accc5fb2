// `capsule serve` stopped (SIGTERM) or killed (-9) loses nothing: QEMU processes run in their own
// process group and outlive the server; the next start re-adopts running VMs (same processes, same
// files) and SUSPENDED ones (on disk) stay resumable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import {
  networkNamespaces,
  qemuProcesses,
  removeNetworkNamespaces,
  serveProcess,
  serveSetup,
  stopProcess,
  vmDirs,
} from './helpers.js';

const namespaceOf = (dataDir: string, id: string): string | undefined =>
  networkNamespaces(dataDir).find((n) => n.vmId === id)?.netns;

test(
  'kill -9 and SIGTERM of the server: running VMs are re-adopted with their processes; suspended ones ' + 'resume',
  async () => {
    const { dataDir, port } = await serveSetup('capsule-restart-');
    let { child: server, capsule } = await serveProcess(dataDir, port);
    try {
      const vm = await capsule.microvms.run({
        imageName: 'base',
        network: { egress: 'allowlist', allow: ['203.0.113.0/24'] },
      });
      const netns = namespaceOf(dataDir, vm.id)!;
      const pid = await vm.execBackground([
        'sh',
        '-c',
        'i=0; while true; do i=$((i+1)); echo $i > /tmp/ticks; sleep 0.1; done',
      ]);
      const sleeper = await capsule.microvms.run({ imageName: 'base' });
      await sleeper.files.write('/root/kept.txt', 'across a server crash');
      await sleeper.suspend();

      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        const [qemu] = qemuProcesses(vm.id);
        await stopProcess(server, signal);
        assert.deepEqual(qemuProcesses(vm.id), [qemu], `the VM's QEMU outlives the server (${signal})`);
        ({ child: server, capsule } = await serveProcess(dataDir, port));
        const back = await vm.refresh();
        assert.equal(back.state, 'RUNNING', `re-adopted after ${signal}: ${back.failureReason}`);
        assert.deepEqual(qemuProcesses(vm.id), [qemu], 'same QEMU process');
        const before = Number((await vm.exec(['cat', '/tmp/ticks'])).stdout);
        await new Promise((r) => setTimeout(r, 500));
        assert.ok(Number((await vm.exec(['cat', '/tmp/ticks'])).stdout) > before, 'the background loop still runs');
        assert.equal((await vm.exec(['sh', '-c', `kill -0 ${pid} && echo alive`])).stdout, 'alive\n');
        // the same namespace, its policy still in force
        assert.equal(namespaceOf(dataDir, vm.id), netns, `the VM keeps its namespace (${signal})`);
        assert.match(
          execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'nft', 'list', 'chain', 'inet', 'capsule', 'mode'], {
            encoding: 'utf8',
          }),
          /ip daddr 203\.0\.113\.0\/24 .*accept/,
        );
        assert.equal((await vm.refresh()).network.allow[0], '203.0.113.0/24');
      }

      assert.equal((await sleeper.refresh()).state, 'SUSPENDED');
      assert.equal((await sleeper.resume()).state, 'RUNNING');
      assert.equal(await sleeper.files.readText('/root/kept.txt'), 'across a server crash');
      await Promise.all([vm.terminate(), sleeper.terminate()]);
      assert.deepEqual(qemuProcesses(dataDir), []);
      assert.deepEqual(vmDirs(dataDir), []);
      await stopProcess(server, 'SIGTERM');
      assert.deepEqual(
        networkNamespaces(dataDir),
        [],
        "no namespace is left: the pooled ones go with a clean stop, the killed server's were swept",
      );
    } finally {
      await stopProcess(server, 'SIGKILL');
      for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
      removeNetworkNamespaces(dataDir);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
);

test('a QEMU that died while the server was down: the VM is FAILED with the reason, nothing left', async () => {
  const { dataDir, port } = await serveSetup('capsule-restart-');
  let { child: server, capsule } = await serveProcess(dataDir, port);
  try {
    const vm = await capsule.microvms.run({ imageName: 'base' });
    await stopProcess(server, 'SIGKILL');
    for (const pid of qemuProcesses(vm.id)) process.kill(pid, 'SIGKILL');
    ({ child: server } = await serveProcess(dataDir, port));
    const after = await vm.refresh();
    assert.equal(after.state, 'FAILED');
    assert.match(after.failureReason ?? '', /server restarted while this MicroVM was RUNNING/);
    assert.deepEqual(vmDirs(dataDir), []);
    assert.deepEqual(
      networkNamespaces(dataDir).filter((n) => n.vmId !== null),
      [],
      'its namespace is gone too',
    );
  } finally {
    await stopProcess(server, 'SIGKILL');
    for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
    removeNetworkNamespaces(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

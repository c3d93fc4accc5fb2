// `capsule serve` stopped (SIGTERM) or killed (-9) loses nothing: QEMU processes run in their own
// process group and outlive the server; the next start re-adopts running VMs (same processes, same
// files) and SUSPENDED ones (on disk) stay resumable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Capsule } from '@capsule/sdk';
import { qemuProcesses, vmDirs } from './helpers.js';

const CAPSULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/capsule');

async function serve(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(CAPSULE, ['serve', '--port', String(port), '--data-dir', dataDir], { stdio: 'ignore', env: { ...process.env, CAPSULE_LOG: 'silent' } });
  for (let i = 0; i < 400; i++) {
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('server did not start');
}

async function stop(server: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  server.kill(signal);
  await new Promise((r) => server.once('exit', r));
}

test('kill -9 and SIGTERM of the server: running VMs are re-adopted with their processes; suspended ones resume', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-restart-'));
  fs.chmodSync(dataDir, 0o755);
  const port = 17000 + (process.pid % 1000);
  let server = await serve(dataDir, port);
  try {
    const capsule = new Capsule({ baseUrl: `http://127.0.0.1:${port}`, apiKey: fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim() });
    const vm = await capsule.microvms.run({ imageName: 'base' });
    const pid = await vm.execBackground(['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/ticks; sleep 0.1; done']);
    const sleeper = await capsule.microvms.run({ imageName: 'base' });
    await sleeper.files.write('/root/kept.txt', 'across a server crash');
    await sleeper.suspend();

    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      const [qemu] = qemuProcesses(vm.id);
      await stop(server, signal);
      assert.deepEqual(qemuProcesses(vm.id), [qemu], `the VM's QEMU outlives the server (${signal})`);
      server = await serve(dataDir, port);
      const back = await vm.refresh();
      assert.equal(back.state, 'RUNNING', `re-adopted after ${signal}: ${back.failureReason}`);
      assert.deepEqual(qemuProcesses(vm.id), [qemu], 'same QEMU process');
      const before = Number((await vm.exec(['cat', '/tmp/ticks'])).stdout);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(Number((await vm.exec(['cat', '/tmp/ticks'])).stdout) > before, 'the background loop still runs');
      assert.equal((await vm.exec(['sh', '-c', `kill -0 ${pid} && echo alive`])).stdout, 'alive\n');
    }

    assert.equal((await sleeper.refresh()).state, 'SUSPENDED');
    assert.equal((await sleeper.resume()).state, 'RUNNING');
    assert.equal(await sleeper.files.readText('/root/kept.txt'), 'across a server crash');
    await Promise.all([vm.terminate(), sleeper.terminate()]);
    assert.deepEqual(qemuProcesses(dataDir), []);
    assert.deepEqual(vmDirs(dataDir), []);
  } finally {
    await stop(server, 'SIGKILL').catch(() => undefined);
    for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a QEMU that died while the server was down: the VM is FAILED with the reason, nothing left', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-restart-'));
  fs.chmodSync(dataDir, 0o755);
  const port = 17500 + (process.pid % 400);
  let server = await serve(dataDir, port);
  try {
    const capsule = new Capsule({ baseUrl: `http://127.0.0.1:${port}`, apiKey: fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim() });
    const vm = await capsule.microvms.run({ imageName: 'base' });
    await stop(server, 'SIGKILL');
    for (const pid of qemuProcesses(vm.id)) process.kill(pid, 'SIGKILL');
    server = await serve(dataDir, port);
    const after = await vm.refresh();
    assert.equal(after.state, 'FAILED');
    assert.match(after.failureReason ?? '', /server restarted while this MicroVM was RUNNING/);
    assert.deepEqual(vmDirs(dataDir), []);
  } finally {
    await stop(server, 'SIGKILL').catch(() => undefined);
    for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

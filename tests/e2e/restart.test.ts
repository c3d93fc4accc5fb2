// `capsule serve` killed with -9 leaves its QEMU processes running (they are in their own process
// group); the next start finds them, stops them and marks the MicroVMs FAILED with the reason.
// (Re-adopting them as RUNNING is not built yet; this pins today's behaviour: nothing leaks, and
// SUSPENDED VMs, which live on disk, come back.)
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
  for (let i = 0; i < 200; i++) {
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('server did not start');
}

test('after kill -9 of the server, a restart cleans up the orphaned VM and reports it FAILED; a suspended one resumes', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-restart-'));
  fs.chmodSync(dataDir, 0o755);
  const port = 17000 + (process.pid % 1000);
  let server = await serve(dataDir, port);
  try {
    const capsule = new Capsule({ baseUrl: `http://127.0.0.1:${port}`, apiKey: fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim() });
    const vm = await capsule.microvms.run({ imageName: 'base' });
    assert.equal(qemuProcesses(vm.id).length, 1);
    const sleeper = await capsule.microvms.run({ imageName: 'base' });
    await sleeper.files.write('/root/kept.txt', 'across a server crash');
    await sleeper.suspend();
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    assert.equal(qemuProcesses(vm.id).length, 1, 'the VM survives the server (own process group)');

    server = await serve(dataDir, port);
    const after = await vm.refresh();
    assert.equal(after.state, 'FAILED');
    assert.match(after.failureReason ?? '', /server restarted while this MicroVM was RUNNING/);
    assert.deepEqual(qemuProcesses(vm.id), []);
    assert.deepEqual(vmDirs(dataDir), []);
    assert.equal((await vm.terminate()).state, 'TERMINATED');
    // a SUSPENDED VM is on disk, not in the server: it survives the crash and resumes
    assert.equal((await sleeper.refresh()).state, 'SUSPENDED');
    assert.equal((await sleeper.resume()).state, 'RUNNING');
    assert.equal(await sleeper.files.readText('/root/kept.txt'), 'across a server crash');
    await sleeper.terminate();

    // a clean stop (SIGTERM) stops its VMs too
    const second = await capsule.microvms.run({ imageName: 'base' });
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    assert.deepEqual(qemuProcesses(second.id), []);
    assert.deepEqual(vmDirs(dataDir), []);
  } finally {
    server.kill('SIGKILL');
    for (const pid of qemuProcesses(dataDir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// Upgrading to per-VM namespaces loses no suspended VM: a state saved when the NIC was on QEMU's
// user-mode network (it carries that backend's section) resumes onto a tap in a namespace, with an
// isolated user-mode netdev beside it; its later suspends say so and resume with it directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadConfig,
  createLogger,
  RuntimeRegistry,
  EgressLogs,
  VmNetworks,
  Jailer,
  hostLaunchOptions,
  Machine,
} from '@capsule/server/internals';
import { networkNamespaces } from './helpers.js';
import { hostAccelerator } from '../support/accelerator.js';

test('a VM suspended before namespaces resumes in one, with its memory and files', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-upgrade-'));
  fs.chmodSync(work, 0o755);
  const config = loadConfig({ dataDir: work });
  const runtimes = new RuntimeRegistry(config.cacheDir, work, config.agentBundlePath);
  runtimes.load();
  const runtime = runtimes.get('base');
  const log = createLogger(process.stderr, true);
  const jail = Jailer.create({ ...config, dataDir: work, memoryOverheadMib: null }, log).forVm('test', 'mvm-upgrade');
  const networks = new VmNetworks(
    { pool: '10.202.0.0/24', poolSize: 0, privateAllow: [], upstreams: [], dataDir: work },
    new EgressLogs(path.join(work, 'egress')),
    log,
  );
  await networks.init(new Map());
  const base = {
    ...hostLaunchOptions(config, runtime),
    vcpuCount: 1,
    memoryMib: 256,
    accelerator: await hostAccelerator(),
    hostname: 'mvm-upgrade',
    jail,
  };
  const suspended = path.join(work, 'suspended');
  fs.mkdirSync(suspended, { mode: 0o700 });
  const machines: Machine[] = [];
  try {
    // before: the NIC on user-mode networking, as every VM had it
    const old = await Machine.launch({ ...base, vmDir: path.join(work, 'vm-old') });
    machines.push(old);
    // /run is a tmpfs: what is there lives in the guest's memory
    await old.agent.exec({ command: ['sh', '-c', 'echo in-memory > /run/kept && echo on-disk > /root/kept && sync'] })
      .result;
    const saved = await old.suspend(suspended);
    // its QEMU quits and its cgroup goes after the suspend answers; the next VM reuses this jail's cgroup
    await saved.stopped;

    // after: the same state into a namespace's tap
    for (const round of [1, 2]) {
      const net = await networks.attach(`upgrade-${round}`, { egress: 'none', allow: [], deny: [] });
      const vm = await Machine.launch({
        ...base,
        vmDir: path.join(work, `vm-${round}`),
        netns: net.netns,
        restore: { kind: 'suspended', statePath: saved.statePath, diskPath: saved.diskPath },
      });
      machines.push(vm);
      assert.equal(vm.legacyUserNet, true, `round ${round}: resumed with the legacy netdev beside the tap`);
      assert.match(fs.readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8'), /tap,id=net0/);
      let stdout = '';
      await vm.agent.exec(
        { command: ['cat', '/run/kept', '/root/kept'] },
        { onStdout: (chunk) => void (stdout += chunk.toString()) },
      ).result;
      assert.equal(stdout, 'in-memory\non-disk\n');
      await (await vm.suspend(suspended)).stopped;
      await networks.release(`upgrade-${round}`, net.slot);
      assert.ok(
        fs.existsSync(path.join(suspended, 'legacy-user-net')),
        'the suspend says the state needs the legacy netdev',
      );
    }
  } finally {
    for (const m of machines) await m.stop().catch(() => undefined);
    jail?.release();
    await networks.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  // after the body passed (a failure in it is the one to report, not the namespace it left)
  assert.deepEqual(networkNamespaces(work), []);
});

// The cgroup files written and read, on v1 (a hierarchy per controller) and v2 (unified) trees laid out
// in a scratch directory the way the kernel shows them; the e2e jail tests use this host's real ones.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cgroups, cgroupName } from './cgroups.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroups-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const limits = { memoryMib: 704, cpuMillicores: 1200, pidsMax: 130 };

test('names from ids are safe path components', () => {
  assert.equal(cgroupName('default'), 'default');
  assert.equal(cgroupName('../../etc'), '______etc');
  assert.equal(cgroupName(''), '_');
});

test("v1: limits in each controller's hierarchy, usage and OOM kills read back", () => {
  const mount = path.join(work, 'v1');
  for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'blkio']) {
    fs.mkdirSync(path.join(mount, c), { recursive: true });
    fs.writeFileSync(path.join(mount, c, 'cgroup.procs'), '');
  }
  const cgroups = Cgroups.detect(mount);
  assert.equal(cgroups.version, 1);
  const vm = cgroups.vm('tenant/x', 'u200001');
  const memory = path.join(mount, 'memory', 'capsule', 'tenant_x', 'u200001');
  fs.mkdirSync(memory, { recursive: true });
  fs.writeFileSync(path.join(memory, 'memory.memsw.limit_in_bytes'), '');
  fs.mkdirSync(path.join(mount, 'blkio', 'capsule', 'tenant_x', 'u200001'), { recursive: true });
  fs.writeFileSync(path.join(mount, 'blkio', 'capsule', 'tenant_x', 'u200001', 'blkio.weight'), '');
  vm.create(limits);
  const read = (c: string, f: string) =>
    fs.readFileSync(path.join(mount, c, 'capsule', 'tenant_x', 'u200001', f), 'utf8');
  assert.equal(read('memory', 'memory.limit_in_bytes'), String(704 * 2 ** 20));
  assert.equal(read('memory', 'memory.memsw.limit_in_bytes'), String(704 * 2 ** 20));
  assert.equal(read('cpu', 'cpu.cfs_quota_us'), '120000');
  assert.equal(read('cpu', 'cpu.cfs_period_us'), '100000');
  assert.equal(read('pids', 'pids.max'), '130');
  assert.equal(read('blkio', 'blkio.weight'), '100');
  assert.equal(read('cpu', 'cpu.shares'), '262144', 'a starting VM outweighs settled ones');
  vm.setCpuPriority('settled');
  assert.equal(read('cpu', 'cpu.shares'), '1024');
  assert.equal(vm.procsFiles().length, 5);
  fs.writeFileSync(path.join(memory, 'memory.usage_in_bytes'), String(300 * 2 ** 20));
  fs.writeFileSync(path.join(memory, 'memory.max_usage_in_bytes'), String(400 * 2 ** 20));
  fs.writeFileSync(path.join(mount, 'cpuacct', 'capsule', 'tenant_x', 'u200001', 'cpuacct.usage'), '2500000000');
  assert.deepEqual(vm.usage(), { cpuSeconds: 2.5, memoryBytes: 300 * 2 ** 20, memoryPeakBytes: 400 * 2 ** 20 });
  fs.writeFileSync(path.join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
  assert.equal(vm.oomKills(), 1);
  assert.equal(vm.memoryLimitMib(), 704);
});

test('v2: controllers enabled down the tree, limits, usage and OOM kills in one directory', () => {
  const mount = path.join(work, 'v2');
  fs.mkdirSync(path.join(mount, 'capsule', 't1'), { recursive: true });
  for (const dir of [mount, path.join(mount, 'capsule'), path.join(mount, 'capsule', 't1')])
    fs.writeFileSync(path.join(dir, 'cgroup.controllers'), 'cpuset cpu io memory pids');
  const cgroups = Cgroups.detect(mount);
  assert.equal(cgroups.version, 2);
  const vm = cgroups.vm('t1', 'u200002');
  vm.create(limits);
  const dir = path.join(mount, 'capsule', 't1', 'u200002');
  assert.equal(fs.readFileSync(path.join(mount, 'cgroup.subtree_control'), 'utf8'), '+memory +cpu +pids +io');
  assert.equal(
    fs.readFileSync(path.join(mount, 'capsule', 't1', 'cgroup.subtree_control'), 'utf8'),
    '+memory +cpu +pids +io',
  );
  assert.equal(fs.readFileSync(path.join(dir, 'memory.max'), 'utf8'), String(704 * 2 ** 20));
  assert.equal(fs.readFileSync(path.join(dir, 'cpu.max'), 'utf8'), '120000 100000');
  assert.equal(fs.readFileSync(path.join(dir, 'pids.max'), 'utf8'), '130');
  assert.equal(fs.readFileSync(path.join(dir, 'cpu.weight'), 'utf8'), '10000');
  vm.setCpuPriority('settled');
  assert.equal(fs.readFileSync(path.join(dir, 'cpu.weight'), 'utf8'), '100');
  assert.deepEqual(vm.procsFiles(), [path.join(dir, 'cgroup.procs')]);
  fs.writeFileSync(path.join(dir, 'memory.current'), '1000');
  fs.writeFileSync(path.join(dir, 'memory.peak'), '2000');
  fs.writeFileSync(path.join(dir, 'cpu.stat'), 'usage_usec 1500000\nuser_usec 1000000\n');
  fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  assert.deepEqual(vm.usage(), { cpuSeconds: 1.5, memoryBytes: 1000, memoryPeakBytes: 2000 });
  assert.equal(vm.oomKills(), 1);
});

test('the CPU weight of a cgroup already removed is left alone', () => {
  const mount = path.join(work, 'gone');
  for (const c of ['memory', 'cpu', 'pids']) {
    fs.mkdirSync(path.join(mount, c), { recursive: true });
    fs.writeFileSync(path.join(mount, c, 'cgroup.procs'), '');
  }
  Cgroups.detect(mount).vm('t', 'u1').setCpuPriority('settled'); // never created: no throw
  assert.equal(fs.existsSync(path.join(mount, 'cpu', 'capsule', 't', 'u1')), false);
});

test('a host without the controllers is refused with JAIL_FAILED', () => {
  const mount = path.join(work, 'none');
  fs.mkdirSync(path.join(mount, 'memory'), { recursive: true });
  fs.writeFileSync(path.join(mount, 'memory', 'cgroup.procs'), '');
  assert.throws(() => Cgroups.detect(mount), /no cgroup v1 cpu, pids hierarchy/);
});

test("this host's real cgroups: a VM's cgroup its uid's last VM left behind takes a larger limit", async (t) => {
  // the kernel (v1 with swap accounting) refuses memory.limit_in_bytes above memory.memsw.limit_in_bytes: EINVAL
  const parent = `capsule-test-${process.pid}`;
  const cgroups = Cgroups.detect('/sys/fs/cgroup', parent);
  const left = cgroups.vm('tenant', 'u1');
  t.after(async () => {
    await left.remove();
    // the tenant and test levels, in every hierarchy (v2: the one tree)
    for (const root of ['', ...fs.readdirSync('/sys/fs/cgroup')].map((c) => path.join('/sys/fs/cgroup', c, parent)))
      for (const dir of [path.join(root, 'tenant'), root]) if (fs.existsSync(dir)) fs.rmdirSync(dir);
  });
  left.create({ ...limits, memoryMib: 512 });
  const again = cgroups.vm('tenant', 'u1'); // never removed: the same directories
  again.create({ ...limits, memoryMib: 640 });
  assert.equal(again.memoryLimitMib(), 640);
  again.create({ ...limits, memoryMib: 256 });
  assert.equal(again.memoryLimitMib(), 256);
});

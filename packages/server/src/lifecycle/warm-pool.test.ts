// The warm pool without VMs (tests/support/lifecycle-harness.ts, a fake hypervisor): it fills to its
// size with paused clones, a launch claims one under the clone's own id, a refused launch gives it back
// untouched, it drains when host memory is short, and what a crashed server's pool left is swept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '@capsule/protocol';
import { createLogger, Jailer, Metrics } from '@capsule/server/internals';
import { FAKE_SNAPSHOTS, TENANT, withLifecycle, type Harness } from '../../../../tests/support/lifecycle-harness.js';
import { FakeHypervisor } from '../../../../tests/support/fake-hypervisor.js';
import { FakeNetworks } from '../../../../tests/support/fake-networks.js';
import { until } from '../../../../tests/support/until.js';
import { sweepWarmPool, WarmPool } from './warm-pool.js';
import { poolTargets } from './pool-targets.js';

const RUN = { imageName: 'base' } as const;

function pooledLaunches(h: Harness): string[] {
  return h.hypervisor.running.filter((vm) => vm.held).map((vm) => vm.options.hostname);
}

test('the pool fills with paused clones; a launch claims one under its id, and the pool refills', async () => {
  await withLifecycle({ snapshots: FAKE_SNAPSHOTS, config: { warmPoolSize: 2 } }, async (h) => {
    h.service.startWarmPool();
    await until('the pool is full', async () => pooledLaunches(h).length === 2, 10_000);
    for (const l of h.hypervisor.launches) assert.equal(l.restore?.kind, 'snapshot');
    const [first, second] = pooledLaunches(h);
    assert.notEqual(first, second);
    const vm = await h.service.run(TENANT, RUN);
    assert.equal(vm.launchedFrom, 'pool');
    assert.equal(vm.id, first, 'the oldest clone, under the id it was made with');
    assert.equal(h.hypervisor.vmOf(vm.id).claimed, true);
    assert.equal(h.networks.holders.get(vm.netSlot!), vm.id);
    assert.deepEqual(h.networks.policies.get(vm.id), vm.network);
    // another shape is not the pool's: it restores as before
    const other = await h.service.run(TENANT, { ...RUN, memoryMib: 1024 });
    assert.equal(other.launchedFrom, 'snapshot');
    await until('the pool refills', async () => pooledLaunches(h).length === 3, 10_000);
    const markers = fs.readdirSync(path.join(h.config.dataDir, 'pool'));
    assert.deepEqual(markers.sort(), [second, pooledLaunches(h)[2]].sort(), 'a claimed clone is no marker');
  });
});

test('a clone that dies while it waits leaves the pool (never claimed), and another takes its place', async () => {
  await withLifecycle({ snapshots: FAKE_SNAPSHOTS, config: { warmPoolSize: 1 } }, async (h) => {
    h.service.startWarmPool();
    await until('the pool is full', async () => pooledLaunches(h).length === 1, 10_000);
    const [dead] = pooledLaunches(h);
    h.hypervisor.vmOf(dead!).crash();
    await until('a new clone', async () => pooledLaunches(h).length === 1 && pooledLaunches(h)[0] !== dead, 10_000);
    const vm = await h.service.run(TENANT, RUN);
    assert.equal(vm.launchedFrom, 'pool');
    assert.notEqual(vm.id, dead);
    assert.equal(fs.existsSync(path.join(h.config.dataDir, 'pool', dead!)), false, 'its marker went with it');
  });
});

test("a launch refused by its tenant's quota gives its clone back untouched", async () => {
  await withLifecycle(
    { snapshots: FAKE_SNAPSHOTS, config: { warmPoolSize: 1 }, quotas: { maxRunningMicroVMs: 0 } },
    async (h) => {
      h.service.startWarmPool();
      await until('the pool is full', async () => pooledLaunches(h).length === 1, 10_000);
      await assert.rejects(h.service.run(TENANT, RUN), { code: ErrorCode.QUOTA_EXCEEDED });
      const clone = h.hypervisor.vmOf(pooledLaunches(h)[0]!);
      assert.equal(clone.alive, true);
      assert.equal(clone.claimed, false);
      assert.equal((await h.store.listMicroVMs({ tenantId: TENANT, limit: 10 })).length, 0);
    },
  );
});

test('no clone while system VMs run; under memory pressure the pool drains, and with room it fills again', async () => {
  const dataDir = fs.mkdtempSync('/tmp/capsule-pool-');
  const log = createLogger(fs.createWriteStream('/dev/null'), false);
  const hypervisor = new FakeHypervisor();
  const networks = new FakeNetworks();
  const metrics = new Metrics();
  let availableMib = 10_000;
  let systemBusy = true;
  const jailer = Jailer.create({ unsafeNoJail: true } as never, log);
  const pool = new WarmPool({
    targets: poolTargets(2, ['base'], []),
    minAvailableMib: 2048,
    shape: { vcpuCount: 1, memoryMib: 512 },
    dataDir,
    runtimes: { list: () => [{ name: 'base' } as never], get: () => ({ name: 'base' }) as never },
    images: null,
    snapshots: FAKE_SNAPSHOTS,
    jailer,
    networks,
    bootDeps: {
      config: { qemuBinary: 'qemu', qemuImgBinary: 'qemu-img', bootTimeoutMs: 1000, extraKernelArgs: '' } as never,
      accelerator: { accelerator: 'tcg', reason: 'unit test' },
      jailer,
      snapshots: null,
      log,
      vmsDir: path.join(dataDir, 'vms'),
      hypervisor,
    },
    metrics,
    log,
    memAvailableMib: () => availableMib,
    systemVmsBusy: () => systemBusy,
  });
  try {
    pool.start();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(hypervisor.launches.length, 0, 'a snapshot or build VM runs: no clone beside it');
    systemBusy = false;
    await until('the pool is full', async () => pool.count('base') === 2, 10_000);
    availableMib = 2000;
    await until('the pool drained', async () => pool.count('base') === 0 && hypervisor.running.length === 0, 10_000);
    assert.equal(networks.holders.size, 0);
    assert.match(await metrics.render({}, []), /capsule_warm_pool_drains_total 2/);
    // room for the floor but not for a clone's whole memory above it: still none
    availableMib = 2048 + 256;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(pool.count('base'), 0);
    availableMib = 10_000;
    await until('the pool refilled', async () => pool.count('base') === 2, 10_000);
    assert.equal(pool.take('base', { vcpuCount: 2, memoryMib: 512 }, null), null, 'another shape');
    assert.equal(pool.take('python', { vcpuCount: 1, memoryMib: 512 }, null), null, 'no pool of it');
    assert.notEqual(pool.take('base', { vcpuCount: 1, memoryMib: 512 }, null), null);
    const text = await metrics.render({}, []);
    assert.match(text, /capsule_warm_pool_claims_total\{pool="base",result="hit"\} 1/);
    assert.doesNotMatch(text, /result="miss"/, 'another shape is no miss: the pool does not serve it');
    await pool.close();
    assert.equal(hypervisor.running.length, 1, 'close stops the clone left, not the one taken');
    assert.deepEqual(
      fs.readdirSync(path.join(dataDir, 'pool')).length,
      1,
      "the taken one's marker: no record claimed it",
    );
  } finally {
    await pool.close();
    for (const vm of hypervisor.running) await vm.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a crashed server's clones are swept at start: their files go, a claimed one's record keeps its own", async () => {
  const dataDir = fs.mkdtempSync('/tmp/capsule-pool-');
  try {
    const vmsDir = path.join(dataDir, 'vms');
    fs.mkdirSync(path.join(dataDir, 'pool'));
    for (const id of ['mvm-unclaimed', 'mvm-claimed']) {
      fs.mkdirSync(path.join(vmsDir, id), { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'pool', id), JSON.stringify({ jailUid: null, pid: null }));
    }
    await sweepWarmPool({
      dataDir,
      vmsDir,
      store: { getMicroVM: async (id: string) => (id === 'mvm-claimed' ? ({ id } as never) : null) },
      jailer: { cgroupOf: () => null },
      log: createLogger(fs.createWriteStream('/dev/null'), false),
    });
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'pool')), []);
    assert.deepEqual(fs.readdirSync(vmsDir), ['mvm-claimed']);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

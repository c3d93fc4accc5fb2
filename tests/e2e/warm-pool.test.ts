// The warm pool with real VMs: a launch claims a paused clone of its runtime's ready snapshot instead of
// restoring one. The claimed VM must be exactly what a restored one is: its own hostname, MAC, entropy
// and clock, its tenant's cgroup, its launch's egress policy; the pool refills, and an empty pool
// restores as before. A server killed with a full pool leaves nothing its next start does not remove.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MicroVM } from '@capsule/sdk';
import { guestMacAddress } from '@capsule/server/internals';
import {
  endpointGet,
  memoryCgroupOf,
  runCli,
  networkNamespaces,
  qemuProcesses,
  serveProcess,
  serveSetup,
  stopProcess,
  useTestServer,
  vmDirs,
  type TestServer,
} from './helpers.js';
import { FAKE_DNS, startFakeInternet, type FakeInternet } from '../support/fake-internet.js';
import { probeAll } from '../support/net-probe.js';
import { until } from '../support/until.js';
import { metricsText, poolClones } from '../support/pool-metrics.js';

const FLASK_APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/flask-app');

/** The ready clones of one of the test server's pools. */
const clonesOf = (server: TestServer, pool: string): Promise<number> => poolClones(server.url, server.adminKey, pool);

/** What identifies a clone from inside: hostname, eth0's MAC, 16 bytes of urandom, its clock (ms). */
async function identity(vm: MicroVM): Promise<{ hostname: string; mac: string; random: string; clockMs: number }> {
  const r = await vm.exec(
    'hostname; cat /sys/class/net/eth0/address; head -c 16 /dev/urandom | od -An -tx1; date +%s%3N',
  );
  assert.equal(r.exitCode, 0, r.stderr);
  const [hostname, mac, random, clock] = r.stdout.trim().split('\n');
  return { hostname: hostname!, mac: mac!, random: random!.replace(/\s+/g, ''), clockMs: Number(clock) };
}

describe('warm pool', () => {
  const server = useTestServer({ warmPoolSize: 1, dnsUpstream: FAKE_DNS });
  let internet: FakeInternet;

  before(async () => {
    internet = await startFakeInternet();
    await server().snapshotsBuilt;
    await until('the pool holds a base clone', async () => (await clonesOf(server(), 'base')) === 1, 120_000);
  });
  after(async () => {
    await internet?.close();
  });

  test("a claimed clone: its id, hostname, MAC and clock, its tenant's cgroup, its egress policy", async () => {
    // a clone waits paused for a while: the claim must set its clock again
    await new Promise((r) => setTimeout(r, 2000));
    const vm = await server().capsule.microvms.run({ imageName: 'base', network: { egress: 'all' } });
    const hostNowMs = Date.now();
    assert.equal(vm.info.launchedFrom, 'pool');
    const id = await identity(vm);
    assert.equal(id.hostname, vm.id);
    assert.equal(id.mac, guestMacAddress(vm.id));
    assert.ok(Math.abs(id.clockMs - hostNowMs) < 5000, `guest clock ${id.clockMs} vs host ${hostNowMs}`);
    const [pid] = qemuProcesses(`/vms/${vm.id}/`);
    assert.ok(pid, 'its QEMU runs');
    assert.match(memoryCgroupOf(pid) ?? '', /^\/capsule\/default\/u\d+$/, "in its tenant's cgroup, out of the pool's");
    const reach = await probeAll(vm, {
      internet: { kind: 'http', url: 'http://allowed.example.com/' },
      metadata: { kind: 'http', url: 'http://169.254.169.254/' },
    });
    assert.equal(reach.internet, 'ok: hello from 198.51.100.10 host=allowed.example.com');
    assert.match(reach.metadata, /^blocked: /);
    const usage = (await server().capsule.microvms.get(vm.id)).info.usage;
    assert.ok(usage && usage.memoryBytes > 0, 'its usage is read from its own cgroup');
    await vm.terminate();
    assert.deepEqual(qemuProcesses(`/vms/${vm.id}/`), []);
  });

  test('the pool refills; clones differ as restored ones do; an empty pool restores; egress none holds', async () => {
    await until('the pool refilled', async () => (await clonesOf(server(), 'base')) === 1, 60_000);
    const pooled = await server().capsule.microvms.run({ imageName: 'base' });
    const restored = await server().capsule.microvms.run({ imageName: 'base' });
    assert.equal(pooled.info.launchedFrom, 'pool');
    assert.equal(restored.info.launchedFrom, 'snapshot', 'none was ready: restored as before');
    await until('the pool refilled', async () => (await clonesOf(server(), 'base')) === 1, 60_000);
    const second = await server().capsule.microvms.run({ imageName: 'base' });
    assert.equal(second.info.launchedFrom, 'pool');
    const ids = await Promise.all([pooled, restored, second].map(identity));
    for (const key of ['hostname', 'mac', 'random'] as const)
      assert.equal(new Set(ids.map((i) => i[key])).size, 3, `${key} differs between clones: ${ids.map((i) => i[key])}`);
    const reach = await probeAll(second, { internet: { kind: 'http', url: 'http://allowed.example.com/' } });
    assert.match(reach.internet, /^blocked: /, 'a pooled VM launched with egress none reaches nothing');
    const metrics = await metricsText(server().url, server().adminKey);
    assert.match(metrics, /^capsule_warm_pool_claims_total\{pool="base",result="hit"\} 3$/m);
    assert.match(metrics, /^capsule_warm_pool_claims_total\{pool="base",result="miss"\} 1$/m);
    await Promise.all([pooled, restored, second].map((vm) => vm.terminate()));
  });
});

describe("warm pool of a tenant's image", () => {
  const server = useTestServer({ warmPoolImages: [{ tenantId: 'default', imageName: 'flask-app', size: 1 }] });

  test('its newest version serves at once; the run hook gets the payload; a new version replaces it', async () => {
    const build = async (): Promise<void> => {
      const r = await runCli(server().url, server().adminKey, ['image', 'create', 'flask-app', '--dir', FLASK_APP]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    };
    await build();
    await until(
      'the image pool holds a clone',
      async () => (await clonesOf(server(), 'default/flask-app')) === 1,
      60_000,
    );
    const vm = await server().capsule.microvms.run({ imageName: 'flask-app', runHookPayload: 'from the pool' });
    assert.equal(vm.info.launchedFrom, 'pool');
    assert.equal(vm.info.imageVersion, 1);
    const { token } = await vm.createAuthToken({ allowedPorts: [8080] });
    const get = (urlPath: string) => endpointGet(server().url, vm.id, { 'x-capsule-auth': token }, urlPath);
    const page = await get('/');
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, new RegExp(`MicroVM <code>${vm.id}</code>`), 'its own hostname');
    assert.deepEqual(JSON.parse((await get('/hooks')).body), [
      { hook: 'ready', payload: '' },
      { hook: 'run', payload: 'from the pool' },
    ]);
    await vm.terminate();
    // version 2: the pool's version-1 clone goes, one of version 2 takes its place
    await until('the pool refilled', async () => (await clonesOf(server(), 'default/flask-app')) === 1, 60_000);
    await build();
    await until(
      'a version 2 clone',
      async () =>
        (await clonesOf(server(), 'default/flask-app')) === 1 &&
        (await metricsText(server().url, server().adminKey)).match(
          /^capsule_warm_pool_fills_total\{result="ok"\} (\d+)$/m,
        )?.[1] === '3',
      60_000,
    );
    const next = await server().capsule.microvms.run({ imageName: 'flask-app' });
    assert.equal(next.info.launchedFrom, 'pool');
    assert.equal(next.info.imageVersion, 2);
    await next.terminate();
  });
});

describe('warm pool after a crash', () => {
  test('a server killed -9 with a full pool: its next start kills the clones and removes their files', async () => {
    const { dataDir, port } = await serveSetup('capsule-e2e-pool-');
    const logFile = path.join(dataDir, 'serve.log');
    let { child } = await serveProcess(dataDir, port, { env: { CAPSULE_WARM_POOL_SIZE: '1' }, logFile });
    try {
      const adminKey = fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
      const url = `http://127.0.0.1:${port}`;
      await until('the pool holds a base clone', async () => (await poolClones(url, adminKey, 'base')) === 1, 180_000);
      const markers = fs.readdirSync(path.join(dataDir, 'pool'));
      assert.ok(markers.length >= 1);
      const uids = markers.map(
        (m) => (JSON.parse(fs.readFileSync(path.join(dataDir, 'pool', m), 'utf8')) as { jailUid: number }).jailUid,
      );
      const clones = qemuProcesses(dataDir);
      assert.ok(clones.length >= 1);
      await stopProcess(child, 'SIGKILL');
      assert.deepEqual(qemuProcesses(dataDir).sort(), clones.sort(), 'QEMU outlives the server');
      ({ child } = await serveProcess(dataDir, port, { logFile }));
      await until('the clones are gone', async () => qemuProcesses(dataDir).length === 0, 10_000);
      assert.deepEqual(fs.readdirSync(path.join(dataDir, 'pool')), []);
      assert.deepEqual(vmDirs(dataDir), []);
      assert.deepEqual(
        networkNamespaces(dataDir).filter((n) => markers.includes(n.vmId ?? '')),
        [],
      );
      for (const uid of uids) assert.equal(fs.existsSync(`/sys/fs/cgroup/memory/capsule/_pool/u${uid}`), false);
      await stopProcess(child, 'SIGTERM');
    } finally {
      await stopProcess(child, 'SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// Two hosts on one Postgres, each a real server with its own data dir and QEMUs: each runs and recovers only
// its own MicroVMs, both are listed with what they hold, a request for a VM through the other server is
// streamed to its host (exec, files, shell, endpoints, suspend, resume), launches spread over the hosts, and a host
// that stops renewing its lease is given up by the other (its running VM FAILED "host h1 lost"); back, it
// stops what it left and is ready.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, type CapsuleConfig } from '@capsule/server';
import { createLogger, NodeSignatures } from '@capsule/server/internals';
import { Capsule, type MicroVM } from '@capsule/sdk';
import { startS3, type TestS3 } from '../support/s3-server.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { until } from '../support/until.js';
import {
  assertNoLeaks,
  endpointGet,
  errorOf,
  guestListening,
  qemuProcesses,
  removeDataDirs,
  runCli,
} from './helpers.js';

const LEASE_MS = 3000;

interface Host {
  id: string;
  dataDir: string;
  server: Awaited<ReturnType<typeof startServer>>;
  capsule: Capsule;
}

describe('hosts sharing one database', () => {
  let cluster: ThrowawayPostgres;
  let databaseUrl: string;
  let s3: TestS3;
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const hosts = new Map<string, Host>();
  /** Every host's data dir, for a cleanup of last resort after a failed test. */
  const dataDirs = new Set<string>();

  /** A host's server on its own data dir (the same admin key file on every host: the key is the cluster's). */
  async function startHost(id: string, dataDir?: string, extra: Partial<CapsuleConfig> = {}): Promise<Host> {
    const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `capsule-e2e-${id}-`));
    fs.chmodSync(dir, 0o755);
    dataDirs.add(dir);
    fs.writeFileSync(path.join(dir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
    const config: Partial<CapsuleConfig> = {
      dataDir: dir,
      port: 0,
      warmPoolSize: 0,
      databaseUrl,
      hostId: id,
      hostLeaseMs: LEASE_MS,
      clusterKey,
      blobs: 's3://capsule-blobs', // suspended state every host can fetch
      s3: s3.config,
      ...extra,
    };
    const server = await startServer(config, createLogger(process.stderr, !process.env.HOSTS_TEST_LOG));
    await server.snapshotsBuilt; // one host at a time builds the machine's ready snapshots
    const host = { id, dataDir: dir, server, capsule: new Capsule({ baseUrl: server.url, apiKey: adminKey }) };
    hosts.set(id, host);
    return host;
  }

  before(async () => {
    s3 = await startS3(['capsule-blobs']);
    cluster = await startThrowawayPostgres();
    databaseUrl = await cluster.createDatabase('capsule_hosts');
    await startHost('h1');
    await startHost('h2');
  });
  after(async () => {
    // through a server that takes clients (a host of a cluster answers only its servers): each host's VMs go
    const front = [...hosts.values()].find((h) => h.server.config.role === 'all');
    const { microvms } = front ? await front.capsule.microvms.list({ state: 'RUNNING' }) : { microvms: [] };
    await Promise.all(microvms.filter((vm) => hosts.has(vm.info.hostId ?? '')).map((vm) => vm.terminate()));
    for (const host of [...hosts.values()].reverse()) {
      await host.server.close();
      assertNoLeaks(host.dataDir);
    }
    removeDataDirs(dataDirs);
    cluster?.stop();
    await s3?.close();
  });

  let onH1: MicroVM;
  let onH2: MicroVM;

  test('each host runs its own MicroVMs and lists every host with what it holds', async () => {
    const h1 = hosts.get('h1')!;
    const h2 = hosts.get('h2')!;
    onH1 = await h1.capsule.microvms.run({ imageName: 'base' });
    onH2 = await h2.capsule.microvms.run({ imageName: 'base', vcpuCount: 2, memoryMib: 768 });
    assert.equal(onH1.info.hostId, 'h1');
    assert.equal(onH2.info.hostId, 'h2');
    const listed = await h2.capsule.hosts.list();
    assert.deepEqual(
      listed.map((h) => [h.id, h.state, h.used, h.capacity.accelerator, h.advertiseUrl]),
      [
        ['h1', 'ready', { vcpus: 1, memoryMib: 512, microvms: 1 }, 'tcg', h1.server.url],
        ['h2', 'ready', { vcpus: 2, memoryMib: 768, microvms: 1 }, 'tcg', h2.server.url],
      ],
    );
    const cli = await runCli(h1.server.url, adminKey, ['hosts', 'ls']);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trim().split('\n');
    assert.match(lines[0], /^h1 {2}ready {2}1\/\d+ vCPU {2}0\.5\/[\d.]+ GiB {2}1 VM {2}tcg {2}last seen \d+ s ago/);
    assert.match(lines[1], /^h2 {2}ready {2}2\/\d+ vCPU {2}0\.8\/[\d.]+ GiB {2}1 VM /);
    const json = await runCli(h1.server.url, adminKey, ['hosts', 'ls', '--json']);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<{ id: string }>).map((h) => h.id),
      ['h1', 'h2'],
    );
  });

  test("another host's MicroVM answers through any server: requests are streamed to its host", async () => {
    const h2 = hosts.get('h2')!;
    const viaH2 = await h2.capsule.microvms.get(onH1.id);
    assert.equal(viaH2.info.state, 'RUNNING');
    assert.equal((await viaH2.exec(['hostname'])).stdout, `${onH1.id}\n`);
    await viaH2.files.write('/root/through-h2.txt', 'forwarded');
    assert.equal(await onH1.files.readText('/root/through-h2.txt'), 'forwarded', 'written on h1');
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    await onH1.files.write('/root/big.bin', big);
    assert.ok(Buffer.from(await viaH2.files.read('/root/big.bin')).equals(big), '8 MiB streamed back through h2');
    // a shell: the WebSocket upgrade is passed on, then bytes flow both ways
    const shell = await viaH2.shell({ rows: 24, cols: 80 });
    let seen = '';
    shell.onData((chunk) => {
      seen += Buffer.from(chunk).toString();
    });
    shell.write('echo VIA-$((6*7))\n');
    await until('the shell answers through h2', async () => seen.includes('VIA-42'), 20_000);
    shell.write('exit 3\n');
    assert.deepEqual(await shell.exited, { exitCode: 3, signal: null, timedOut: false });
    // its endpoint through h2: a token made through h2 works on h1 (the cluster key's), by host name and path
    await onH1.execBackground([
      'node',
      '-e',
      "require('http').createServer((q, s) => s.end('app on ' + require('os').hostname())).listen(8080)",
    ]);
    const { token } = await viaH2.createAuthToken({ allowedPorts: [8080], ttlSeconds: 120 });
    await guestListening(onH1, 8080);
    const byName = await endpointGet(h2.server.url, onH1.id, { 'x-capsule-auth': token });
    assert.deepEqual([byName.status, byName.body], [200, `app on ${onH1.id}`]);
    const byPath = await fetch(`${h2.server.url}/endpoints/${onH1.id}/`, { headers: { 'x-capsule-auth': token } });
    assert.deepEqual([byPath.status, await byPath.text()], [200, `app on ${onH1.id}`]);
    assert.equal((await endpointGet(h2.server.url, onH1.id, { 'x-capsule-auth': 'cat_forged.x' })).status, 401);
    // suspend and resume through h2 run on h1, and the VM keeps its files
    assert.equal((await viaH2.suspend()).state, 'SUSPENDED');
    assert.equal((await viaH2.resume()).state, 'RUNNING');
    assert.equal((await onH1.exec(['cat', '/root/through-h2.txt'])).stdout, 'forwarded');
    // a request already forwarded once is answered where it lands; another tenant's key gets 404 here
    const onceForwarded = await fetch(`${h2.server.url}/v1/microvms/${onH1.id}/exec`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${adminKey}`,
        'content-type': 'application/json',
        'x-capsule-forwarded-by': 'h1',
      },
      body: JSON.stringify({ command: ['true'] }),
    });
    const refused = await errorOf(onceForwarded);
    assert.deepEqual([refused.status, refused.code], [421, 'MICROVM_ON_ANOTHER_HOST']);
    assert.match(refused.message, /on host h1/);
    const tenant = await h2.capsule.tenants.create({ name: 'other' });
    const { key } = await h2.capsule.tenants.createApiKey(tenant.id);
    const stranger = await fetch(`${h2.server.url}/v1/microvms/${onH1.id}/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: ['true'] }),
    });
    assert.equal(stranger.status, 404);
    // a node request signed with another key than the cluster's is refused
    const resumePath = `/v1/microvms/${onH1.id}/resume`;
    const forged = new NodeSignatures(randomBytes(32).toString('base64url')).sign('POST', resumePath, 'h2', 'default');
    const refusedNode = await errorOf(
      await fetch(`${h2.server.url}${resumePath}`, {
        method: 'POST',
        headers: { ...forged, 'x-capsule-forwarded-by': 'h9' },
      }),
    );
    assert.deepEqual([refusedNode.status, refusedNode.message], [401, 'node request refused: bad signature']);
  });

  test('launches through any server spread over the hosts (most memory free); a drained host takes none', async () => {
    const h2 = hosts.get('h2')!;
    // h1 holds 512 MiB, h2 768 MiB, on the same machine: the first goes to h1, which then holds more
    const first = await h2.capsule.microvms.run({ imageName: 'base' });
    const second = await h2.capsule.microvms.run({ imageName: 'base' });
    assert.deepEqual([first.info.hostId, second.info.hostId], ['h1', 'h2']);
    assert.equal((await first.exec(['hostname'])).stdout, `${first.id}\n`, 'reached on h1 through h2');
    assert.deepEqual(qemuProcesses(`/vms/${first.id}/`).length, 1);
    await Promise.all([first.terminate(), second.terminate()]); // first's through h2, sent to h1
    assert.deepEqual(qemuProcesses(`/vms/${first.id}/`), [], 'terminated on its host');
    assert.equal((await first.refresh()).state, 'TERMINATED');
    // drained, h1 takes no new work: a launch through h1 runs on h2
    const h1 = hosts.get('h1')!;
    const drain = await runCli(h1.server.url, adminKey, ['hosts', 'drain', 'h1']);
    assert.equal(drain.code, 0, drain.stderr);
    assert.match(drain.stdout, /^h1 {2}draining {2}1\/\d+ vCPU/);
    const placed = await h1.capsule.microvms.run({ imageName: 'base' });
    assert.equal(placed.info.hostId, 'h2');
    await placed.terminate();
    // and its running VM moves to h2 (suspended, published, resumed there) with its processes and files
    const moved = await until(
      'h1 drained',
      async () => {
        const vm = await h2.capsule.microvms.get(onH1.id);
        return vm.info.hostId === 'h2' && vm.info.state === 'RUNNING' && vm;
      },
      90_000,
    );
    assert.equal((await moved.exec(['cat', '/root/through-h2.txt'])).stdout, 'forwarded');
    const { token } = await moved.createAuthToken({ allowedPorts: [8080], ttlSeconds: 120 });
    const app = await endpointGet(h1.server.url, onH1.id, { 'x-capsule-auth': token });
    assert.deepEqual([app.status, app.body], [200, `app on ${onH1.id}`], 'its app runs on, reached through h1');
    assert.deepEqual(qemuProcesses(`${h1.dataDir}/`), [], 'h1 runs nothing');
    assert.ok(!fs.existsSync(path.join(h1.dataDir, 'suspended', onH1.id)), 'nor keeps its state');
    assert.equal((await h1.capsule.hosts.list())[0].used.microvms, 0);
    assert.equal((await h1.capsule.hosts.undrain('h1')).state, 'ready');
    const unknown = await fetch(`${h1.server.url}/v1/hosts/h9/drain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.deepEqual([unknown.status, (await errorOf(unknown)).message], [404, 'host h9 not found']);
  });

  test('a host that stops renewing is given up: its running MicroVM FAILED; back, it stops what it left', async () => {
    const h1 = hosts.get('h1')!;
    const h2 = hosts.get('h2')!;
    const lost = await h1.capsule.microvms.run({ imageName: 'base' });
    assert.equal(lost.info.hostId, 'h1');
    const [pid] = qemuProcesses(`/vms/${lost.id}/`);
    assert.ok(pid, "h1's VM runs");
    // a VM suspended on h1 with a process holding a value in memory only, and a file
    const moving = await h1.capsule.microvms.run({ imageName: 'base' });
    assert.equal(moving.info.hostId, 'h1');
    await moving.files.write('/root/kept.txt', 'across hosts');
    await moving.execBackground([
      'node',
      '-e',
      "const v = require('crypto').randomUUID(); require('http').createServer((q, s) => s.end(v)).listen(8081)",
    ]);
    const ask = (vm: MicroVM) =>
      vm.exec(['node', '-e', "fetch('http://127.0.0.1:8081').then((r) => r.text()).then((t) => console.log(t))"]);
    const held = await until('the app answers', async () => (await ask(moving).catch(() => null))?.stdout || false);
    await moving.suspend();
    await until('its state is in the shared store', async () => {
      return (await moving.refresh()).suspendedStateLocation === 'shared';
    });
    // a server stopped leaves its VMs running (the next start adopts them), and its lease runs out
    await h1.server.close();
    hosts.delete('h1');
    const failed = await until(
      'h1 given up',
      async () => {
        const vm = await h2.capsule.microvms.get(lost.id);
        return vm.info.state === 'FAILED' && vm.info;
      },
      LEASE_MS * 4,
    );
    assert.equal(failed.failureReason, 'host h1 lost');
    assert.equal((await h2.capsule.hosts.list())[0].state, 'down');
    assert.deepEqual(qemuProcesses(`/vms/${lost.id}/`), [pid], 'nobody else touches its QEMU');
    // h1's suspended VM stays SUSPENDED, and resumes on h2 with its memory and files
    const there = await h2.capsule.microvms.get(moving.id);
    assert.equal(there.info.state, 'SUSPENDED');
    const resumed = await there.resume();
    assert.deepEqual([resumed.state, resumed.hostId, resumed.suspendedStateLocation], ['RUNNING', 'h2', null]);
    assert.equal((await ask(there)).stdout, held, 'the same process, its memory intact');
    assert.equal((await there.exec(['cat', '/root/kept.txt'])).stdout, 'across hosts');
    assert.equal(qemuProcesses(`${hosts.get('h2')!.dataDir}/vms/${moving.id}/`).length, 1, "h2's QEMU runs it");
    assert.ok(fs.existsSync(path.join(h1.dataDir, 'suspended', moving.id)), 'h1 is down: its copy is still there');

    await startHost('h1', h1.dataDir);
    assert.deepEqual(qemuProcesses(`/vms/${lost.id}/`), [], 'back, h1 stopped the VM it no longer runs');
    assert.ok(!fs.existsSync(path.join(h1.dataDir, 'suspended', moving.id)), 'and removed the state h2 took');
    assert.deepEqual(
      (await h2.capsule.hosts.list()).map((h) => [h.id, h.state]),
      [
        ['h1', 'ready'],
        ['h2', 'ready'],
      ],
    );
    assert.equal((await h2.capsule.microvms.get(onH2.id)).info.state, 'RUNNING', "h2's VM never noticed");
    assert.equal((await onH2.exec('echo fine')).stdout, 'fine\n');
  });
  test('a host of a cluster (CAPSULE_ROLE=host) answers only what the other servers sign', async () => {
    const h2 = hosts.get('h2')!;
    const h3 = await startHost('h3', undefined, { role: 'host' });
    const direct = await fetch(`${h3.server.url}/v1/microvms`, { headers: { authorization: `Bearer ${adminKey}` } });
    const refused = await errorOf(direct);
    assert.deepEqual([refused.status, refused.code], [403, 'FORBIDDEN']);
    assert.match(refused.message, /CAPSULE_ROLE=host/);
    assert.equal((await fetch(`${h3.server.url}/healthz`)).status, 200, 'its health answers anyone');
    // h1 drained (it holds nothing), h3 has the most memory free: a launch through h2 runs there, signed
    await h2.capsule.hosts.drain('h1');
    const vm = await h2.capsule.microvms.run({ imageName: 'base' });
    await h2.capsule.hosts.undrain('h1');
    assert.equal(vm.info.hostId, 'h3');
    assert.equal((await vm.exec(['hostname'])).stdout, `${vm.id}\n`, 'its exec, through h2');
    await vm.files.write('/root/signed.txt', 'through h2');
    assert.equal(await vm.files.readText('/root/signed.txt'), 'through h2');
    assert.equal((await vm.suspend()).state, 'SUSPENDED');
    assert.equal((await vm.resume()).state, 'RUNNING');
    // its suspended state lost from h3's disk, but published: fetched back at its resume
    await vm.suspend();
    await until('published', async () => (await vm.refresh()).suspendedStateLocation === 'shared');
    fs.rmSync(path.join(h3.dataDir, 'suspended', vm.id), { recursive: true, force: true });
    assert.equal((await vm.resume()).state, 'RUNNING');
    assert.equal(await vm.files.readText('/root/signed.txt'), 'through h2', 'its files came back with it');
    await vm.terminate();
  });
});

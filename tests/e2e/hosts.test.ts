// Two hosts on one Postgres, each a real server with its own data dir and QEMUs: each runs and recovers only
// its own MicroVMs, both are listed with what they hold, and a host that stops renewing its lease is given up
// by the other (its running VM FAILED "host h1 lost"); back, it stops what it left and is ready again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, type CapsuleConfig } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { Capsule, type MicroVM } from '@capsule/sdk';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { until } from '../support/until.js';
import { assertNoLeaks, errorOf, qemuProcesses, removeNetworkNamespaces, runCli } from './helpers.js';

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
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const hosts = new Map<string, Host>();
  /** Every host's data dir, for a cleanup of last resort after a failed test. */
  const dataDirs = new Set<string>();

  /** A host's server on its own data dir (the same admin key file on every host: the key is the cluster's). */
  async function startHost(id: string, dataDir?: string): Promise<Host> {
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
    };
    const server = await startServer(config, createLogger(process.stderr, true));
    await server.snapshotsBuilt; // one host at a time builds the machine's ready snapshots
    const host = { id, dataDir: dir, server, capsule: new Capsule({ baseUrl: server.url, apiKey: adminKey }) };
    hosts.set(id, host);
    return host;
  }

  before(async () => {
    cluster = await startThrowawayPostgres();
    databaseUrl = await cluster.createDatabase('capsule_hosts');
    await startHost('h1');
    await startHost('h2');
  });
  after(async () => {
    for (const host of hosts.values()) {
      const { microvms } = await host.capsule.microvms.list({ state: 'RUNNING' });
      await Promise.all(microvms.filter((vm) => vm.info.hostId === host.id).map((vm) => vm.terminate()));
      await host.server.close();
      assertNoLeaks(host.dataDir);
    }
    for (const dir of dataDirs) {
      // a host a failed test left stopped may have left its VMs
      for (const pid of qemuProcesses(dir)) process.kill(pid, 'SIGKILL');
      removeNetworkNamespaces(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    cluster?.stop();
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

  test("another host's MicroVM is read anywhere but acted on only where it runs (421 with its host)", async () => {
    const h2 = hosts.get('h2')!;
    assert.equal((await h2.capsule.microvms.get(onH1.id)).info.state, 'RUNNING');
    for (const [method, route, body] of [
      ['POST', `/v1/microvms/${onH1.id}/exec`, { command: ['true'] }],
      ['POST', `/v1/microvms/${onH1.id}/suspend`, undefined],
      ['DELETE', `/v1/microvms/${onH1.id}`, undefined],
    ] as const) {
      const response = await fetch(h2.server.url + route, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: body && JSON.stringify(body),
      });
      const error = await errorOf(response);
      assert.equal(error.status, 421, `${method} ${route}`);
      assert.equal(error.code, 'MICROVM_ON_ANOTHER_HOST');
      assert.match(error.message, /on host h1/);
    }
    assert.equal((await onH1.exec('echo still-here')).stdout, 'still-here\n', 'untouched on its own host');
  });

  test('a host that stops renewing is given up: its running MicroVM FAILED; back, it stops what it left', async () => {
    const h1 = hosts.get('h1')!;
    const h2 = hosts.get('h2')!;
    const [pid] = qemuProcesses(`/vms/${onH1.id}/`);
    assert.ok(pid, "h1's VM runs");
    // a server stopped leaves its VMs running (the next start adopts them), and its lease runs out
    await h1.server.close();
    hosts.delete('h1');
    const failed = await until(
      'h1 given up',
      async () => {
        const vm = await h2.capsule.microvms.get(onH1.id);
        return vm.info.state === 'FAILED' && vm.info;
      },
      LEASE_MS * 4,
    );
    assert.equal(failed.failureReason, 'host h1 lost');
    assert.equal((await h2.capsule.hosts.list())[0].state, 'down');
    assert.deepEqual(qemuProcesses(`/vms/${onH1.id}/`), [pid], 'nobody else touches its QEMU');

    await startHost('h1', h1.dataDir);
    assert.deepEqual(qemuProcesses(`/vms/${onH1.id}/`), [], 'back, h1 stopped the VM it no longer runs');
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
});

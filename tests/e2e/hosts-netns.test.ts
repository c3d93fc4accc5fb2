// Three hosts (`capsule serve --role host`), each a process in its own network namespace with its own data dir,
// reached over a veth pair from two api nodes (`--role api`) in the machine's namespace; one Postgres (its unix
// socket), one S3 server on an address of the machine's every namespace routes to. Launches through the api nodes
// spread over the three; exec and files reach each through either api node; a host killed with its QEMUs loses its
// running VM (FAILED "host h1 lost", then terminated through an api node while h1 is down) and its suspended one
// resumes on another host with its memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Capsule, MicroVM } from '@capsule/sdk';
import { startS3, type TestS3 } from '../support/s3-server.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { until } from '../support/until.js';
import { qemuProcesses, removeDataDirs, serveProcess, serveSetup, stopProcess } from './helpers.js';

const LEASE_MS = 3000;
const HOST_PORT = 7071;
/** This side of host 1's veth: a local address every host's namespace routes to. */
const S3_ADDRESS = '172.29.1.1';
/** Unique per run: interface and namespace names (at most 15 characters). */
const TAG = String(process.pid % 100_000);

interface Node {
  id: string;
  dataDir: string;
  child: ChildProcess;
  capsule: Capsule;
}

function ip(...args: string[]): void {
  const run = spawnSync('ip', args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ip ${args.join(' ')}: ${run.stderr.trim()}`);
}

/** Host `i`'s namespace, joined to this one by a veth pair: it is 172.29.i.2, this side 172.29.i.1, its gateway. */
function hostNamespace(i: number): { netns: string; address: string } {
  const netns = `chn${TAG}-${i}`;
  const [outside, inside] = [`chv${TAG}${i}`, `chp${TAG}${i}`];
  ip('netns', 'add', netns);
  ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
  ip('link', 'set', inside, 'netns', netns);
  ip('addr', 'add', `172.29.${i}.1/30`, 'dev', outside);
  ip('link', 'set', outside, 'up');
  for (const args of [
    ['addr', 'add', `172.29.${i}.2/30`, 'dev', inside],
    ['link', 'set', 'lo', 'up'],
    ['link', 'set', inside, 'up'],
    ['route', 'add', 'default', 'via', `172.29.${i}.1`],
  ])
    ip('netns', 'exec', netns, 'ip', ...args);
  return { netns, address: `172.29.${i}.2` };
}

function removeNamespaces(): void {
  for (let i = 1; i <= 3; i++) {
    spawnSync('ip', ['link', 'del', `chv${TAG}${i}`]);
    spawnSync('ip', ['netns', 'del', `chn${TAG}-${i}`]);
  }
}

describe('three hosts in their own network namespaces, behind two api nodes', () => {
  let pg: ThrowawayPostgres;
  let s3: TestS3;
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const nodes = new Map<string, Node>();
  const node = (id: string): Node => nodes.get(id)!;
  let env: Record<string, string>;

  async function start(id: string, extra: { netns?: string; host?: string; role: 'host' | 'api' }): Promise<void> {
    const { dataDir, port } = await serveSetup(`capsule-e2e-${id}-`);
    // only the first server's: the others take the cluster's admin key from the store (api/admin-key.ts)
    if (nodes.size === 0) fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
    const hostPort = extra.role === 'host' ? HOST_PORT : port;
    const { child, capsule } = await serveProcess(dataDir, hostPort, {
      netns: extra.netns,
      host: extra.host,
      waitMs: 120_000,
      env: {
        ...env,
        CAPSULE_ROLE: extra.role,
        CAPSULE_HOST_ID: id,
        ...(extra.host ? { CAPSULE_ADVERTISE_URL: `http://${extra.host}:${hostPort}` } : {}),
      },
      logFile: process.env.HOSTS_TEST_LOG ? path.join(os.tmpdir(), `netns-${id}.log`) : undefined,
    });
    nodes.set(id, { id, dataDir, child, capsule });
  }

  before(async () => {
    removeNamespaces(); // a run killed before its cleanup
    const namespaces = [1, 2, 3].map(hostNamespace);
    s3 = await startS3(['capsule-blobs'], S3_ADDRESS);
    pg = await startThrowawayPostgres();
    env = {
      DATABASE_URL: await pg.createDatabase('capsule_netns'),
      CAPSULE_BLOBS: 's3://capsule-blobs',
      CAPSULE_S3_ENDPOINT: s3.config.endpoint!,
      CAPSULE_S3_ACCESS_KEY_ID: s3.config.accessKeyId!,
      CAPSULE_S3_SECRET_ACCESS_KEY: s3.config.secretAccessKey!,
      CAPSULE_CLUSTER_KEY: clusterKey,
      CAPSULE_HOST_LEASE_MS: String(LEASE_MS),
    };
    for (const [i, { netns, address }] of namespaces.entries())
      await start(`h${i + 1}`, { netns, host: address, role: 'host' });
    await start('a1', { role: 'api' });
    await start('a2', { role: 'api' });
  });
  after(async () => {
    const live = [...nodes.values()].find((n) => n.id.startsWith('a') && n.child.exitCode === null);
    const { microvms } = live ? await live.capsule.microvms.list({ state: 'RUNNING' }) : { microvms: [] };
    await Promise.all(microvms.map((vm) => vm.terminate().catch(() => undefined)));
    for (const n of nodes.values()) await stopProcess(n.child, 'SIGTERM');
    removeDataDirs([...nodes.values()].map((n) => n.dataDir));
    removeNamespaces();
    pg?.stop();
    await s3?.close();
  });

  const vms: MicroVM[] = [];

  test("every server took the first one's admin key as the cluster's", () => {
    for (const n of nodes.values())
      assert.equal(fs.readFileSync(path.join(n.dataDir, 'admin-key'), 'utf8').trim(), adminKey, n.id);
  });

  test('launches through the api nodes spread over the hosts; exec and files reach each through either', async () => {
    for (const front of ['a1', 'a2', 'a1']) vms.push(await node(front).capsule.microvms.run({ imageName: 'base' }));
    assert.deepEqual(vms.map((vm) => vm.info.hostId).sort(), ['h1', 'h2', 'h3']);
    for (const vm of vms) {
      const viaA2 = await node('a2').capsule.microvms.get(vm.id);
      assert.equal((await viaA2.exec(['hostname'])).stdout, `${vm.id}\n`);
      await vm.files.write('/root/note.txt', `on ${vm.info.hostId}`);
      assert.equal(await viaA2.files.readText('/root/note.txt'), `on ${vm.info.hostId}`);
      const host = node(vm.info.hostId!);
      assert.equal(qemuProcesses(`${host.dataDir}/vms/${vm.id}/`).length, 1, `its QEMU is ${host.id}'s`);
    }
    assert.deepEqual(
      (await node('a2').capsule.hosts.list()).map((h) => [h.id, h.advertiseUrl]),
      [1, 2, 3].map((i) => [`h${i}`, `http://172.29.${i}.2:${HOST_PORT}`]),
    );
  });

  test('a host killed with its QEMUs: its running VM FAILED, its suspended one resumes elsewhere', async () => {
    const asleep = vms.find((vm) => vm.info.hostId === 'h1')!;
    const memory = randomBytes(8).toString('hex');
    await asleep.execBackground(['sh', '-c', `V=${memory}; while true; do echo $V > /tmp/alive; sleep 1; done`]);
    await until('the loop writes', async () => (await asleep.exec(['cat', '/tmp/alive'])).exitCode === 0);
    await asleep.suspend();
    await until('its state is in S3', async () => (await asleep.refresh()).suspendedStateLocation === 'shared', 60_000);
    // h1 now has the most memory free: the next launch runs there
    const running = await node('a2').capsule.microvms.run({ imageName: 'base' });
    assert.equal(running.info.hostId, 'h1');
    const h1 = node('h1');
    h1.child.kill('SIGKILL');
    for (const pid of qemuProcesses(h1.dataDir)) process.kill(pid, 'SIGKILL');
    const failed = await until(
      'h1 given up',
      async () => {
        const now = await node('a1').capsule.microvms.get(running.id);
        return now.info.state === 'FAILED' && now.info;
      },
      30_000,
    );
    assert.equal(failed.failureReason, 'host h1 lost');
    // it ends through an api node while h1 stays down: nobody waits on a machine that may not come back
    const ended = await (await node('a2').capsule.microvms.get(running.id)).terminate();
    assert.equal(ended.state, 'TERMINATED');
    const resumed = await (await node('a1').capsule.microvms.get(asleep.id)).resume();
    assert.equal(resumed.state, 'RUNNING');
    const moved = await node('a2').capsule.microvms.get(asleep.id);
    assert.ok(['h2', 'h3'].includes(moved.info.hostId ?? ''), `moved to ${moved.info.hostId}`);
    await moved.exec(['rm', '/tmp/alive']);
    await until('the loop writes again', async () => (await moved.exec(['cat', '/tmp/alive'])).exitCode === 0);
    assert.equal((await moved.exec(['cat', '/tmp/alive'])).stdout, `${memory}\n`, 'its memory as it was');
    assert.equal(await moved.files.readText('/root/note.txt'), 'on h1');
  });
});

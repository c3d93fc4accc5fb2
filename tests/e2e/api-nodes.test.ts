// Two api nodes (`capsule serve --role api`, real processes) in front of two hosts (`--role host`) on one Postgres
// and one S3: the api nodes run no VM and are no hosts; launches through either spread over the hosts; exec, files,
// shell, endpoints, suspend and resume through either; an image uploaded through one is built on a host, its log read
// through the other; the AWS API through both with one access key; an api node killed in the middle of a launch loses
// nothing, the client retrying it through the other with the same client token; Postgres restarted under load.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  LambdaMicrovmsClient,
  ResumeMicrovmCommand,
  RunMicrovmCommand,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import postgres from 'pg';
import { startServer, type CapsuleConfig } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { Capsule, type MicroVM, type MicroVMInfo, QuotaExceededError } from '@capsule/sdk';
import { startS3, type TestS3 } from '../support/s3-server.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { until } from '../support/until.js';
import { zipOf } from '../support/zip-writer.js';
import {
  assertNoLeaks,
  endpointGet,
  guestListening,
  qemuProcesses,
  removeDataDirs,
  runCli,
  serveProcess,
  serveSetup,
  stopProcess,
} from './helpers.js';

const LEASE_MS = 3000;
const BASE_ARN = 'arn:aws:lambda:us-east-1:aws:microvm-image:base';

interface ApiNode {
  id: string;
  dataDir: string;
  url: string;
  child: ChildProcess;
  capsule: Capsule;
}

describe('api nodes in front of hosts', () => {
  let pg: ThrowawayPostgres;
  let databaseUrl: string;
  let s3: TestS3;
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const hosts: Array<{ id: string; dataDir: string; server: Awaited<ReturnType<typeof startServer>> }> = [];
  const apiNodes = new Map<string, ApiNode>();
  const dataDirs = new Set<string>();

  function newDataDir(id: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `capsule-e2e-${id}-`));
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
    dataDirs.add(dir);
    return dir;
  }

  async function startHost(id: string): Promise<void> {
    const dataDir = newDataDir(id);
    const config: Partial<CapsuleConfig> = {
      dataDir,
      port: 0,
      warmPoolSize: 0,
      databaseUrl,
      hostId: id,
      hostLeaseMs: LEASE_MS,
      clusterKey,
      role: 'host',
      blobs: 's3://capsule-blobs',
      s3: s3.config,
    };
    const server = await startServer(config, createLogger(process.stderr, !process.env.HOSTS_TEST_LOG));
    await server.snapshotsBuilt;
    hosts.push({ id, dataDir, server });
  }

  async function startApiNode(id: string): Promise<ApiNode> {
    const { dataDir, port } = await serveSetup(`capsule-e2e-${id}-`);
    fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
    dataDirs.add(dataDir);
    const { child, capsule } = await serveProcess(dataDir, port, {
      env: {
        CAPSULE_ROLE: 'api',
        CAPSULE_HOST_ID: id,
        DATABASE_URL: databaseUrl,
        CAPSULE_BLOBS: 's3://capsule-blobs',
        CAPSULE_S3_ENDPOINT: s3.config.endpoint!,
        CAPSULE_S3_ACCESS_KEY_ID: s3.config.accessKeyId!,
        CAPSULE_S3_SECRET_ACCESS_KEY: s3.config.secretAccessKey!,
        CAPSULE_S3_FORCE_PATH_STYLE: 'true',
        CAPSULE_CLUSTER_KEY: clusterKey,
      },
      logFile: process.env.HOSTS_TEST_LOG ? path.join(os.tmpdir(), `${id}.log`) : undefined,
    });
    const node = { id, dataDir, url: `http://127.0.0.1:${port}`, child, capsule };
    apiNodes.set(id, node);
    return node;
  }

  const api = (id: string): ApiNode => apiNodes.get(id)!;
  /** AWS's SDK against an api node, with the default pair one api node wrote (every server opens its secret). */
  const awsClient = (id: string): LambdaMicrovmsClient =>
    new LambdaMicrovmsClient({
      region: 'us-east-1',
      endpoint: api(id).url,
      credentials: JSON.parse(fs.readFileSync(path.join(api('a1').dataDir, 'aws-credentials'), 'utf8')),
      maxAttempts: 1,
    });

  before(async () => {
    s3 = await startS3(['capsule-blobs']);
    pg = await startThrowawayPostgres();
    databaseUrl = await pg.createDatabase('capsule_api_nodes');
    await startHost('h1');
    await startHost('h2');
    await startApiNode('a1');
    await startApiNode('a2');
  });
  after(async () => {
    stopEvents.abort();
    const front = [...apiNodes.values()].find((n) => n.child.exitCode === null && n.child.signalCode === null);
    const { microvms } = front ? await front.capsule.microvms.list({ state: 'RUNNING' }) : { microvms: [] };
    await Promise.all(microvms.map((vm) => vm.terminate()));
    for (const node of apiNodes.values()) await stopProcess(node.child, 'SIGTERM');
    for (const host of [...hosts].reverse()) {
      await host.server.close();
      assertNoLeaks(host.dataDir);
    }
    removeDataDirs(dataDirs);
    pg?.stop();
    await s3?.close();
  });

  let vmA: MicroVM;
  let vmB: MicroVM;
  /** What a2's event stream told, from the first test on: changes the hosts made, heard through Postgres. */
  const events: MicroVMInfo[] = [];
  const stopEvents = new AbortController();
  const sawEvent = (id: string, state: string) => events.some((e) => e.id === id && e.state === state);

  test('api nodes run no VM and are no hosts; launches through either spread over the hosts', async () => {
    const listed = await runCli(api('a1').url, adminKey, ['hosts', 'ls', '--json']);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ id: string }>).map((h) => h.id),
      ['h1', 'h2'],
    );
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    void (async () => {
      for await (const vm of api('a2').capsule.microvms.watch({ signal: stopEvents.signal, onReady: opened }))
        events.push(vm);
    })().catch(() => undefined);
    await open;
    vmA = await api('a1').capsule.microvms.run({ imageName: 'base' });
    vmB = await api('a2').capsule.microvms.run({ imageName: 'base' });
    assert.deepEqual([vmA.info.hostId, vmB.info.hostId].sort(), ['h1', 'h2'], 'spread: one on each');
    await until('a2 tells of the VM a host launched for a1', async () => sawEvent(vmA.id, 'RUNNING'), 10_000);
    for (const node of apiNodes.values()) {
      assert.deepEqual(qemuProcesses(node.dataDir), [], `${node.id} runs no QEMU`);
      assert.ok(
        !fs.existsSync(path.join(node.dataDir, 'vms')) || fs.readdirSync(path.join(node.dataDir, 'vms')).length === 0,
      );
    }
    // a host of the cluster takes no client's request directly
    const hostUrl = hosts[0].server.url;
    assert.equal(
      (await fetch(`${hostUrl}/v1/microvms`, { headers: { authorization: `Bearer ${adminKey}` } })).status,
      403,
    );
  });

  test("exec, files, shell, endpoints, suspend and resume through either api node reach the VM's host", async () => {
    const viaA2 = await api('a2').capsule.microvms.get(vmA.id);
    assert.equal((await viaA2.exec(['hostname'])).stdout, `${vmA.id}\n`);
    await vmA.files.write('/root/via-a1.txt', 'through a1');
    assert.equal(await viaA2.files.readText('/root/via-a1.txt'), 'through a1');
    const shell = await viaA2.shell({ rows: 24, cols: 80 });
    let seen = '';
    shell.onData((chunk) => {
      seen += Buffer.from(chunk).toString();
    });
    shell.write('echo API-$((6*7))\n');
    await until('the shell answers through a2', async () => seen.includes('API-42'), 20_000);
    shell.write('exit 0\n');
    assert.equal((await shell.exited).exitCode, 0);
    await vmA.execBackground([
      'node',
      '-e',
      "require('http').createServer((q, s) => s.end('app on ' + require('os').hostname())).listen(8080)",
    ]);
    const { token } = await vmA.createAuthToken({ allowedPorts: [8080], ttlSeconds: 120 });
    await guestListening(vmA, 8080);
    const answer = await endpointGet(api('a2').url, vmA.id, { 'x-capsule-auth': token });
    assert.deepEqual([answer.status, answer.body], [200, `app on ${vmA.id}`]);
    // a process's memory survives a suspend through one api node and a resume through the other
    const memory = (await vmA.exec(['sh', '-c', 'echo $$ > /tmp/pid; cat /proc/sys/kernel/random/uuid'])).stdout;
    await vmA.execBackground(['sh', '-c', `V=${memory.trim()}; while true; do echo $V > /tmp/alive; sleep 1; done`]);
    assert.equal((await vmA.suspend()).state, 'SUSPENDED');
    assert.equal((await viaA2.resume()).state, 'RUNNING');
    await vmA.exec(['sh', '-c', 'rm /tmp/alive']);
    await until('the loop writes again', async () => (await vmA.exec(['cat', '/tmp/alive'])).exitCode === 0);
    assert.equal((await vmA.exec(['cat', '/tmp/alive'])).stdout, memory);
    assert.equal(await vmA.files.readText('/root/via-a1.txt'), 'through a1');
  });

  test('an image uploaded through an api node is built on a host, its log read through the other', async () => {
    const zip = zipOf([
      { name: 'capsule.json', data: JSON.stringify({ runtime: 'base', build: ['echo built-on-$(hostname)'] }) },
      { name: 'app.py', data: 'print("hi")\n' },
    ]);
    const created = await api('a1').capsule.images.create('via-api', { zip });
    const built = await api('a2').capsule.images.waitUntilBuilt('via-api', created.version, { timeoutMs: 600_000 });
    assert.equal(built.state, 'SUCCESSFUL', built.failureReason ?? '');
    assert.match(await api('a2').capsule.images.buildLog('via-api', created.version), /built-on-/);
    // the host that built it has its snapshot in its cache, and says so with its lease: its launches go there
    const builder = await until('a host tells it has the image ready', async () => {
      const client = new postgres.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query("SELECT id FROM hosts WHERE ready_json LIKE '%cached:default/via-api%'");
        return rows.length === 1 && (rows[0].id as string);
      } finally {
        await client.end();
      }
    });
    const launched = [];
    for (let i = 0; i < 2; i++) launched.push(await api('a2').capsule.microvms.run({ imageName: 'via-api' }));
    assert.deepEqual(
      launched.map((vm) => vm.info.hostId),
      [builder, builder],
      'both on the host that has it ready (spread alone would put the second on the other)',
    );
    await Promise.all(launched.map((vm) => vm.terminate()));
  });

  test('the AWS API through the api nodes: one access key on every server, each change on the VM’s host', async () => {
    const vm = await awsClient('a1').send(
      new RunMicrovmCommand({ imageIdentifier: BASE_ARN, maximumDurationInSeconds: 600 }),
    );
    assert.equal(vm.state, 'RUNNING');
    const id = vm.microvmId!;
    await awsClient('a2').send(new SuspendMicrovmCommand({ microvmIdentifier: id }));
    assert.equal((await api('a1').capsule.microvms.get(id)).info.state, 'SUSPENDED');
    await awsClient('a2').send(new ResumeMicrovmCommand({ microvmIdentifier: id }));
    assert.equal((await api('a1').capsule.microvms.get(id)).info.state, 'RUNNING');
    await awsClient('a1').send(new TerminateMicrovmCommand({ microvmIdentifier: id }));
    assert.equal((await api('a2').capsule.microvms.get(id)).info.state, 'TERMINATED');
  });

  test("a tenant's quota holds across the api nodes racing: its launches through both never pass it", async () => {
    const tenant = await api('a1').capsule.tenants.create({ name: 'racer', quotas: { maxRunningMicroVMs: 2 } });
    const { key } = await api('a2').capsule.tenants.createApiKey(tenant.id);
    const fronts = ['a1', 'a2'].map((id) => new Capsule({ baseUrl: api(id).url, apiKey: key }));
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        fronts[i % 2].microvms.run({ imageName: 'base' }).then(
          (vm) => ({ vm, error: null }),
          (error: Error) => ({ vm: null, error }),
        ),
      ),
    );
    const ran = results.flatMap((r) => (r.vm ? [r.vm] : []));
    assert.equal(ran.length, 2, results.map((r) => r.error?.message ?? r.vm?.id).join('; '));
    for (const { error } of results.filter((r) => r.error))
      assert.ok(error instanceof QuotaExceededError, error?.message);
    for (const vm of ran) await vm.terminate();
  });

  test('an api node killed mid-launch loses nothing: the retry through the other is the same VM', async () => {
    const before = (await api('a2').capsule.microvms.list({})).microvms.length;
    const run = new RunMicrovmCommand({
      imageIdentifier: BASE_ARN,
      maximumDurationInSeconds: 600,
      clientToken: 'once',
    });
    const first = awsClient('a1')
      .send(run)
      .then(
        () => 'answered',
        (err: Error) => err.name,
      );
    await new Promise((r) => setTimeout(r, 150)); // sent: the host is launching it
    api('a1').child.kill('SIGKILL');
    assert.notEqual(await first, 'answered', 'a1 died before answering');
    const retried = await awsClient('a2').send(run);
    assert.equal(retried.state, 'RUNNING');
    const again = await awsClient('a2').send(run);
    assert.equal(again.microvmId, retried.microvmId, 'one client token, one VM');
    const after = (await api('a2').capsule.microvms.list({})).microvms;
    assert.equal(after.length, before + 1, 'exactly one VM for the launch and its retries');
    await api('a2')
      .capsule.microvms.get(retried.microvmId!)
      .then((vm) => vm.terminate());
  });

  test('Postgres restarted under load: requests during the outage fail with a code, the cluster recovers', async () => {
    const front = api('a2').capsule;
    const statuses: number[] = [];
    let loading = true;
    const load = (async () => {
      while (loading) {
        const answer = await fetch(`${api('a2').url}/v1/microvms/${vmB.id}/exec`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ command: ['true'] }),
        }).catch(() => null);
        statuses.push(answer?.status ?? 0);
        await answer?.arrayBuffer();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    pg.pause();
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    pg.resume();
    await until(
      'an exec through a2 works again',
      async () =>
        (await front.microvms.get(vmB.id)).exec(['true']).then(
          (r) => r.exitCode === 0,
          () => false,
        ),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    loading = false;
    await load;
    const seen = JSON.stringify(statuses);
    assert.ok(statuses.includes(200) && statuses.includes(503), `execs before, during and after: ${seen}`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200 && s !== 503),
      [],
      'an outage is 503, never a 500 or a dropped connection',
    );
    // no host was given up, no VM failed, a launch works
    assert.deepEqual(
      (await front.hosts.list()).map((h) => h.state),
      ['ready', 'ready'],
    );
    assert.equal((await front.microvms.get(vmB.id)).info.state, 'RUNNING');
    assert.equal((await front.microvms.get(vmA.id)).info.state, 'RUNNING');
    const launched = await front.microvms.run({ imageName: 'base' });
    assert.equal((await launched.exec(['true'])).exitCode, 0);
    await until('its stream, opened before the outage, hears again', async () => sawEvent(launched.id, 'RUNNING'));
    await launched.terminate();
  });
});

// Boot real microVMs (TCG here) and exercise exec end to end through the REST API and SDK.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import type { MicroVM } from '@capsule/sdk';
import { useTestServer } from './helpers.js';

describe('exec in a running MicroVM', () => {
  const server = useTestServer();
  let vm: MicroVM;

  before(async () => {
    vm = await server().capsule.microvms.run({ imageName: 'python' });
  });

  test('the VM is RUNNING on its own kernel, not the host one', async () => {
    assert.equal(vm.state, 'RUNNING');
    assert.equal(vm.info.accelerator, await server().accelerator());
    const result = await vm.exec(['python3', '-c', 'import platform; print(6*7, platform.release())']);
    assert.equal(result.exitCode, 0, result.stderr);
    const [answer, release] = result.stdout.trim().split(' ');
    assert.equal(answer, '42');
    assert.match(release, /-cloud-amd64$/);
    assert.notEqual(release, os.release());
    assert.equal(vm.info.kernelRelease, release);
  });

  test('stdout and stderr arrive as produced, in order', async () => {
    const order: string[] = [];
    for await (const event of vm.execStream(
      'for i in 1 2 3; do echo out$i; sleep 0.2; echo err$i >&2; sleep 0.2; done',
    )) {
      if (event.type !== 'exit') order.push(`${event.type}:${new TextDecoder().decode(event.data).trim()}`);
    }
    assert.deepEqual(order, ['stdout:out1', 'stderr:err1', 'stdout:out2', 'stderr:err2', 'stdout:out3', 'stderr:err3']);
  });

  test('10 MiB of binary stdin comes back byte for byte', async () => {
    const input = randomBytes(10 * 1024 * 1024);
    const chunks: Uint8Array[] = [];
    let exitCode: number | null = null;
    for await (const event of vm.execStream(['cat'], { stdin: input })) {
      if (event.type === 'stdout') chunks.push(event.data);
      else if (event.type === 'exit') exitCode = event.exitCode;
    }
    const output = Buffer.concat(chunks);
    assert.equal(exitCode, 0);
    assert.equal(output.length, input.length);
    assert.equal(createHash('sha256').update(output).digest('hex'), createHash('sha256').update(input).digest('hex'));
  });

  test('exit codes, signals and the shell form', async () => {
    assert.equal((await vm.exec('exit 7')).exitCode, 7);
    const killed = await vm.exec(['sh', '-c', 'kill -TERM $$']);
    assert.deepEqual([killed.exitCode, killed.signal], [null, 'SIGTERM']);
    const env = await vm.exec('echo "$GREETING from $(pwd)"', { env: { GREETING: 'hello' }, cwd: '/tmp' });
    assert.equal(env.stdout, 'hello from /tmp\n');
  });

  test('a timeout kills the whole process group', async () => {
    const started = Date.now();
    const result = await vm.exec(['sh', '-c', 'sleep 60 & sleep 60'], { timeoutMs: 1000 });
    assert.deepEqual([result.exitCode, result.signal, result.timedOut], [null, 'SIGKILL', true]);
    assert.ok(Date.now() - started < 30_000);
    const left = await vm.exec(['sh', '-c', 'pgrep -x sleep || true']);
    assert.equal(left.stdout, '');
  });

  test("a missing command exits 127 with the guest's message", async () => {
    const argv = await vm.exec(['no-such-command', '--flag']);
    assert.equal(argv.exitCode, 127);
    assert.match(argv.stderr, /no-such-command: command not found/);
    const shell = await vm.exec('no-such-command');
    assert.equal(shell.exitCode, 127);
    assert.match(shell.stderr, /no-such-command: not found/);
  });

  test('20 concurrent execs in one VM all complete with their own output', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        vm.exec(['sh', '-c', `sleep 0.$((RANDOM % 5)); echo job-${i}; exit ${i % 5}`]),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r.stdout, `job-${i}\n`);
      assert.equal(r.exitCode, i % 5);
    });
  });

  test('a background process outlives its request and zombies are reaped', async () => {
    const pid = await vm.execBackground(['sh', '-c', 'echo bg > /tmp/bg.txt; sleep 30']);
    assert.ok(pid > 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await vm.exec(['cat', '/tmp/bg.txt'])).stdout, 'bg\n');
    // an orphan that exits must not linger as a zombie (tini reaps it as PID 1)
    await vm.exec(['sh', '-c', '(sleep 0.2 &) ; exit 0']);
    await new Promise((r) => setTimeout(r, 1000));
    const zombies = await vm.exec(['sh', '-c', "ps -eo stat= | grep -c '^Z' || true"]);
    assert.equal(zombies.stdout.trim(), '0');
  });

  test('output larger than every window streams through with bounded memory', async () => {
    let bytes = 0;
    for await (const event of vm.execStream(['sh', '-c', 'head -c 67108864 /dev/zero'])) {
      if (event.type === 'stdout') bytes += event.data.length;
    }
    assert.equal(bytes, 64 * 1024 * 1024);
  });

  test('the guest cannot see the host filesystem', async () => {
    const marker = `/tmp/capsule-host-marker-${process.pid}`;
    fs.writeFileSync(marker, 'host');
    try {
      assert.notEqual((await vm.exec(['test', '-e', marker])).exitCode, 0);
      // nothing shared in: no 9p/virtiofs mounts, only the VM's own disk
      assert.equal((await vm.exec(['sh', '-c', "grep -cE ' (9p|virtiofs) ' /proc/mounts || true"])).stdout.trim(), '0');
      assert.equal(
        (
          await vm.exec(['sh', '-c', "ls /sys/block | grep -v '^vda$' | grep -v -e '^loop' -e '^ram' | wc -l"])
        ).stdout.trim(),
        '0',
      );
    } finally {
      fs.rmSync(marker);
    }
  });
});

// The CLI as a user runs it: bin/capsule against a real server, checking output and exit codes.
import { describe, test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { runCli, useTestServer, type CliRun, type TestServer } from './helpers.js';

const capsule = (server: TestServer, args: string[], stdin = ''): Promise<CliRun> =>
  runCli(server.url, server.adminKey, args, stdin);

describe('capsule CLI', () => {
  const server = useTestServer();

  test('run --rm runs one command in a fresh VM, prints its output and exits with its code', async () => {
    const result = await capsule(server(), [
      'run',
      'python',
      '--rm',
      '--',
      'python3',
      '-c',
      'import platform,sys; print(6*7, platform.release()); sys.exit(4)',
    ]);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stdout, /^42 \S+-cloud-amd64\n$/);
    const { microvms } = await server().capsule.microvms.list();
    assert.deepEqual(
      microvms.map((vm) => vm.state),
      ['TERMINATED'],
    );
  });

  test('run, exec (streams, stdin, exit code), ls, get --json, terminate', async () => {
    const run = await capsule(server(), ['run', 'base', '--quiet', '--label', 'suite=cli']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^mvm-[a-z2-7]{16}$/);

    const exec = await capsule(server(), ['exec', id, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual([exec.code, exec.stdout, exec.stderr], [3, 'out\n', 'err\n']);
    const piped = await capsule(server(), ['exec', id, '--', 'tr', 'a-z', 'A-Z'], 'shout\n');
    assert.deepEqual([piped.code, piped.stdout], [0, 'SHOUT\n']);
    const killed = await capsule(server(), ['exec', id, '--no-stdin', '--', 'sh', '-c', 'kill -KILL $$']);
    assert.equal(killed.code, 137);
    const timeout = await capsule(server(), ['exec', id, '--timeout', '1s', '--', 'sleep', '30']);
    assert.equal(timeout.code, 137);
    assert.match(timeout.stderr, /timed out/);

    const ls = await capsule(server(), ['ls', '--label', 'suite=cli']);
    assert.match(ls.stdout, new RegExp(`^ID\\s+STATE[\\s\\S]*${id}\\s+RUNNING\\s+base`));
    const get = await capsule(server(), ['get', id, '--json']);
    assert.deepEqual(JSON.parse(get.stdout).state, 'RUNNING');

    const term = await capsule(server(), ['terminate', id]);
    assert.deepEqual([term.code, term.stdout.trim()], [0, `${id} TERMINATED`]);
    const again = await capsule(server(), ['exec', id, '--', 'true']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /INVALID_STATE: cannot exec in MicroVM .* it is TERMINATED/);
  });

  test('run --egress LIST --deny LIST, network set, network log', async () => {
    const run = await capsule(server(), [
      'run',
      'base',
      '--json',
      '--egress',
      'pypi.org,*.githubusercontent.com,203.0.113.0/24',
      '--deny',
      '203.0.113.7',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const vm = JSON.parse(run.stdout) as { id: string; network: unknown };
    assert.deepEqual(vm.network, {
      egress: 'allowlist',
      allow: ['pypi.org', '*.githubusercontent.com', '203.0.113.0/24'],
      deny: ['203.0.113.7/32'],
    });
    const set = await capsule(server(), ['network', 'set', vm.id, '--egress', 'all', '--deny', '198.51.100.0/24']);
    assert.deepEqual([set.code, set.stdout], [0, `${vm.id} egress all (deny 198.51.100.0/24)\n`]);
    const bad = await capsule(server(), ['network', 'set', vm.id, '--egress', '*.com']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /VALIDATION_FAILED: .*"\*\.com"/);
    await capsule(server(), ['exec', vm.id, '--', 'getent', 'hosts', 'pypi.org']); // a DNS query to log
    const log = await capsule(server(), ['network', 'log', vm.id, '--json']);
    assert.equal(log.code, 0, log.stderr);
    assert.ok(
      (JSON.parse(log.stdout) as Array<{ protocol: string; name?: string }>).some(
        (e) => e.protocol === 'dns' && e.name === 'pypi.org',
      ),
    );
    const human = await capsule(server(), ['network', 'log', vm.id]);
    assert.match(human.stdout, /pypi\.org/);
    assert.equal((await capsule(server(), ['terminate', vm.id])).code, 0);
  });

  test('usage errors exit 2; API errors exit 1 with the code', async () => {
    const usage = await capsule(server(), ['run']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: capsule run IMAGE/);
    const unknown = await capsule(server(), ['frobnicate']);
    assert.equal(unknown.code, 2);
    const badOption = await capsule(server(), ['run', 'base', '--nope']);
    assert.deepEqual([badOption.code, badOption.stdout], [2, '']);
    assert.match(badOption.stderr, /unknown option '--nope'\nusage: capsule run IMAGE/);
    const help = await capsule(server(), ['exec', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: capsule exec ID \[options\] -- CMD\.\.\.\n[\s\S]*--timeout <duration>/);
    const missing = await capsule(server(), ['get', 'mvm-aaaaaaaaaaaaaaaa']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NOT_FOUND/);
    const noImage = await capsule(server(), ['run', 'nope', '--rm', '--', 'true']);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /IMAGE_NOT_FOUND/);
  });

  test('cp in and out (streamed, bytes intact), logs shows the console, url and token', async () => {
    const run = await capsule(server(), ['run', 'base', '--quiet']);
    const id = run.stdout.trim();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-cp-'));
    try {
      const local = path.join(dir, 'in.bin');
      const payload = randomBytes(3 * 1024 * 1024 + 17);
      fs.writeFileSync(local, payload);
      const up = await capsule(server(), ['cp', local, `${id}:/root/copied.bin`, '--json']);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(JSON.parse(up.stdout).bytes, payload.length);
      const back = path.join(dir, 'out.bin');
      const down = await capsule(server(), ['cp', `${id}:/root/copied.bin`, back]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(fs.readFileSync(back).equals(payload));
      const missing = await capsule(server(), ['cp', `${id}:/root/nope`, path.join(dir, 'nope')]);
      assert.equal(missing.code, 1);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['in.bin', 'out.bin'], 'a failed download leaves nothing');
      assert.equal((await capsule(server(), ['cp', local, 'relative:path'])).code, 2);

      await capsule(server(), ['exec', id, '--', 'sh', '-c', 'echo hello-console > /dev/console']);
      const logs = await capsule(server(), ['logs', id]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /hello-console/);

      const url = await capsule(server(), ['url', id, '--port', '9000']);
      assert.equal(url.stdout.trim(), `http://9000-${id}.localhost:${new URL(server().url).port}`);
      const token = await capsule(server(), ['token', id, '--ports', '8080,9000', '--ttl', '5m', '--json']);
      const parsed = JSON.parse(token.stdout) as { token: string; expiresAt: string };
      assert.match(parsed.token, /^cat_/);
      assert.ok(Math.abs(Date.parse(parsed.expiresAt) - Date.now() - 300_000) < 30_000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await capsule(server(), ['terminate', id]);
    }
  });
});

// The CLI as a user runs it: bin/capsule against a real server, checking output and exit codes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, useTestServer, type CliRun, type TestServer } from './helpers.js';


const capsule = (server: TestServer, args: string[], stdin = ''): Promise<CliRun> => runCli(server.url, server.adminKey, args, stdin);

describe('capsule CLI', () => {
  const server = useTestServer();

  test('run --rm runs one command in a fresh VM, prints its output and exits with its code', async () => {
    const result = await capsule(server(), ['run', 'python', '--rm', '--', 'python3', '-c', 'import platform,sys; print(6*7, platform.release()); sys.exit(4)']);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stdout, /^42 \S+-cloud-amd64\n$/);
    const { microvms } = await server().capsule.microvms.list();
    assert.deepEqual(microvms.map((vm) => vm.state), ['TERMINATED']);
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

  test('usage errors exit 2; API errors exit 1 with the code', async () => {
    const usage = await capsule(server(), ['run']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: capsule run IMAGE/);
    const unknown = await capsule(server(), ['frobnicate']);
    assert.equal(unknown.code, 2);
    const missing = await capsule(server(), ['get', 'mvm-aaaaaaaaaaaaaaaa']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NOT_FOUND/);
    const noImage = await capsule(server(), ['run', 'nope', '--rm', '--', 'true']);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /IMAGE_NOT_FOUND/);
  });
});

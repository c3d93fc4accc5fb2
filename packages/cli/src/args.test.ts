// The command line as parsed: the real program's definitions, stopped before any action runs (a
// preAction hook), so no server is needed; and main's exit codes, from a real `capsule` process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDurationSeconds, UsageError } from './args.js';
import type { CliCommand } from './command.js';
import { buildProgram } from './program.js';

interface Parsed {
  command: string;
  args: string[];
  options: Record<string, unknown>;
  tail: string[];
}

class Stop extends Error {
  constructor(readonly parsed: Parsed) {
    super('parsed');
  }
}

/** What `capsule ...argv` would hand its action. */
async function parse(...argv: string[]): Promise<Parsed> {
  const program = buildProgram({ writeOut: () => {}, writeErr: () => {} });
  program.hook('preAction', (_root, action) => {
    const command = action as CliCommand;
    throw new Stop({
      command: command.path(),
      args: command.processedArgs,
      options: command.opts(),
      tail: command.tail,
    });
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof Stop) return err.parsed;
    throw err;
  }
  throw new Error('no action ran');
}

test('aliases reach the same command', async () => {
  assert.equal((await parse('list')).command, 'capsule ls');
  assert.equal((await parse('rm', 'mvm-x')).command, 'capsule terminate');
  assert.equal((await parse('images', 'list')).command, 'capsule image ls');
  assert.equal((await parse('tenant', 'list')).command, 'capsule tenant ls');
});

test('--flag value and --flag=value; repeatable K=V; comma lists; --no- switches; durations in seconds', async () => {
  const run = await parse(
    'run',
    'python',
    '--vcpus=2',
    '--memory-mib',
    '512',
    '--env',
    'A=1',
    '--env=B=x=y',
    '--label',
    'k=v',
    '--egress',
    'pypi.org,*.github.com',
    '--deny',
    '10.0.0.0/8, 10.1.0.0/16',
    '--deny=192.0.2.1',
    '--idle',
    '15m',
    '--max-duration=1h30m',
    '--no-auto-resume',
    '--quiet',
  );
  assert.deepEqual(run.args, ['python']);
  assert.deepEqual(run.options, {
    vcpus: 2,
    memoryMib: 512,
    env: { A: '1', B: 'x=y' },
    label: { k: 'v' },
    egress: 'pypi.org,*.github.com',
    deny: ['10.0.0.0/8', '10.1.0.0/16', '192.0.2.1'],
    idle: 900,
    maxDuration: 5400,
    autoResume: false,
    stdin: true,
    quiet: true,
  });
  const token = await parse('token', 'mvm-x', '--ttl=5m');
  assert.deepEqual(token.options, { ports: { allowedPorts: [8080] }, ttl: 300 });
  assert.deepEqual((await parse('token', 'mvm-x', '--ports', '8080,9000')).options.ports, {
    allowedPorts: [8080, 9000],
  });
  assert.deepEqual((await parse('token', 'mvm-x', '--ports', '8080,9000-9100')).options.ports, {
    allowedPorts: [8080],
    allowedPortRanges: [{ start: 9000, end: 9100 }],
  });
  assert.deepEqual((await parse('token', 'mvm-x', '--ports', 'all')).options.ports, { allPorts: true });
  assert.deepEqual((await parse('ls', '--label', 'a=1', '--label', 'b=2')).options.label, { a: '1', b: '2' });
  assert.deepEqual((await parse('tenant', 'quota', 'ten-1', '--max-vcpus', '8')).options, { maxVcpus: 8 });
  assert.deepEqual((await parse('key', 'revoke', 'KEY', '--tenant=ten-1')).options, { tenant: 'ten-1' });
});

test('the -- tail: the command after it, options inside it left alone', async () => {
  const rm = await parse('run', 'python', '--rm', '--env', 'A=1', '--', 'sh', '-c', 'echo --env --', '--help');
  assert.deepEqual([rm.args, rm.options.rm, rm.options.env], [['python'], true, { A: '1' }]);
  assert.deepEqual(rm.tail, ['sh', '-c', 'echo --env --', '--help']);
  const exec = await parse('exec', 'mvm-x', '--no-stdin', '--timeout', '30s', '--', 'ls', '--', '-l');
  assert.deepEqual(exec.args, ['mvm-x']);
  assert.deepEqual(exec.options, { stdin: false, timeout: '30s' });
  assert.deepEqual(exec.tail, ['ls', '--', '-l']);
  // an option's value may be "--": the tail starts at the next one
  const cwd = await parse('exec', 'mvm-x', '--cwd', '--', '--', 'pwd');
  assert.deepEqual([cwd.options.cwd, cwd.tail], ['--', ['pwd']]);
  assert.deepEqual((await parse('exec', 'mvm-x')).tail, []);
});

test('bad command lines are UsageErrors naming the usage', async () => {
  const rejects = (argv: string[], message: RegExp) =>
    assert.rejects(parse(...argv), (err: Error) => err instanceof UsageError && message.test(err.message));
  await rejects(
    ['run'],
    /missing required argument 'IMAGE'\nusage: capsule run IMAGE \[options\] \[--rm -- CMD\.\.\.\]/,
  );
  await rejects(['run', 'python', '--nope'], /^unknown option '--nope'\nusage: capsule run IMAGE/);
  await rejects(['get', 'a', 'b'], /too many arguments[\s\S]*usage: capsule get ID/);
  await rejects(['exec', 'mvm-x', 'ls'], /too many arguments/); // a command goes after --
  await rejects(['frobnicate'], /unknown command 'frobnicate'\nusage: capsule <command>/);
  await rejects(['image', 'frob'], /unknown command 'frob'\nusage: capsule image <command>/);
  await rejects(['key', 'ls'], /required option '--tenant <ID>' not specified/);
  await rejects(['run', 'python', '--vcpus'], /option '--vcpus <N>' argument missing/);
  await rejects(['run', 'python', '--vcpus', 'two'], /--vcpus must be a whole number, got "two"/);
  await rejects(['run', 'python', '--env', 'novalue'], /--env expects KEY=VALUE, got "novalue"/);
  await rejects(['run', 'python', '--idle', 'soon'], /--idle: cannot read duration "soon"/);
  await rejects(['exec', 'mvm-x', '--timeout', 'soon', '--', 'true'], /--timeout: cannot read duration/);
  await rejects(['url', 'mvm-x', '--port', '70000'], /--port must be 1-65535/);
  await rejects(['token', 'mvm-x', '--ports', '80,http'], /--ports: "http" is not a port, a range/);
});

test('help is generated from the definitions: every command, alias and option', () => {
  const program = buildProgram();
  const root = program.helpInformation();
  for (const term of ['serve', 'image|images', 'run', 'ls|list', 'exec', 'cp', 'terminate|rm', 'admin-key'])
    assert.match(root, new RegExp(`^  ${term.replace('|', '\\|')} `, 'm'));
  const run = program.commands.find((c) => c.name() === 'run')!.helpInformation();
  assert.match(run, /^Usage: capsule run IMAGE \[options\] \[--rm -- CMD\.\.\.\]/);
  for (const option of ['--vcpus <N>', '--max-duration <duration>', '--egress', '--env <K=V>', '--no-stdin', '--rm'])
    assert.ok(run.includes(option), option);
  const image = program.commands.find((c) => c.name() === 'image')!;
  assert.deepEqual(
    image.commands.map((c) => c.name()),
    ['create', 'ls', 'get', 'logs', 'rm'],
  );
});

test('durations', () => {
  assert.equal(parseDurationSeconds('90', 'x'), 90);
  assert.equal(parseDurationSeconds('15m', 'x'), 900);
  assert.equal(parseDurationSeconds('1h30m', 'x'), 5400);
  assert.throws(() => parseDurationSeconds('soon', 'x'), /cannot read duration/);
  assert.throws(() => parseDurationSeconds('', 'x'), /cannot read duration/);
});

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const capsule = (...argv: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, CAPSULE_URL: 'http://127.0.0.1:9', CAPSULE_API_KEY: 'unused' },
  });

test('exit codes: help 0 on stdout; usage errors 2 with the message on stderr; no command 2', () => {
  const help = capsule('--help');
  assert.deepEqual([help.status, help.stderr], [0, '']);
  assert.match(help.stdout, /^Usage: capsule <command> \[options\]/);
  const runHelp = capsule('help', 'run');
  assert.equal(runHelp.status, 0);
  assert.match(runHelp.stdout, /^Usage: capsule run IMAGE/);
  const unknown = capsule('run', 'python', '--nope');
  assert.deepEqual([unknown.status, unknown.stdout], [2, '']);
  assert.match(unknown.stderr, /^capsule: unknown option '--nope'\nusage: capsule run IMAGE/);
  const missing = capsule('exec');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^capsule: missing required argument 'ID'/);
  const none = capsule();
  assert.equal(none.status, 2);
  assert.match(none.stderr, /Commands:/);
  const unreachable = capsule('ls');
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stderr, /^capsule: NETWORK: cannot reach Capsule/);
});

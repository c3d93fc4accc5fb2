// Interactive sessions over WebSocket: a PTY shell (type, read the prompt, resize), an interactive
// command with stdin and signals, auth on the upgrade, and `capsule shell` from a pipe.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { Capsule, type MicroVM, type Session } from '@capsule/sdk';
import { runCli, useTestServer } from './helpers.js';

/** Collects a session's output; `until` waits for a pattern to appear after the given offset. */
function recorder(session: Session): {
  text: () => string;
  until: (pattern: RegExp, from?: number) => Promise<string>;
} {
  let text = '';
  const waiters: Array<() => void> = [];
  session.onData((data) => {
    text += Buffer.from(data).toString();
    for (const w of waiters.splice(0)) w();
  });
  return {
    text: () => text,
    async until(pattern, from = 0) {
      const deadline = Date.now() + 30_000;
      while (!pattern.test(text.slice(from))) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in output: ${JSON.stringify(text.slice(from))}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 500);
        });
      }
      return text.slice(from);
    },
  };
}

describe('interactive sessions', () => {
  const server = useTestServer();
  let vm: MicroVM;
  before(async () => {
    vm = await server().capsule.microvms.run({ imageName: 'base' });
  });
  after(async () => {
    await vm?.terminate().catch(() => undefined);
  });

  test('a PTY shell: type a command, read its output and the prompt, resize, exit with a status', async () => {
    const shell = await vm.shell({ rows: 30, cols: 100 });
    const out = recorder(shell);
    shell.write('stty size; tty; echo READY-$((6*7))\n');
    const first = await out.until(/READY-42/);
    assert.match(first, /30 100/);
    assert.match(first, /\/dev\/pts\/\d+/);
    // the next prompt follows the output (it may come in a later chunk)
    assert.match(await out.until(/READY-42[\s\S]*[#$] $/m), /[#$] $/m, 'a prompt is shown');
    const mark = out.text().length;
    shell.resize(40, 120);
    shell.write('stty size\n');
    assert.match(await out.until(/40 120/, mark), /40 120/);
    // Ctrl-C reaches the foreground job through the terminal, not the shell
    shell.write('sleep 100\n');
    await new Promise((r) => setTimeout(r, 500));
    shell.write('\x03');
    shell.write('echo after-interrupt\n');
    await out.until(/after-interrupt\r?\n/, mark);
    shell.write('exit 3\n');
    assert.deepEqual(await shell.exited, { exitCode: 3, signal: null, timedOut: false });
  });

  test('an interactive command: stdin streams in, EOF ends it; a signal stops another', async () => {
    const cat = await vm.execInteractive(['sh', '-c', 'cat; echo done >&2']);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    cat.onData((data, fd) => (fd === 1 ? out : err).push(Buffer.from(data)));
    cat.write('hello ');
    cat.write(new TextEncoder().encode('world'));
    cat.end();
    assert.deepEqual(await cat.exited, { exitCode: 0, signal: null, timedOut: false });
    assert.equal(Buffer.concat(out).toString(), 'hello world');
    assert.equal(Buffer.concat(err).toString(), 'done\n');

    const sleeper = await vm.execInteractive(['sleep', '100']);
    await new Promise((r) => setTimeout(r, 300));
    sleeper.signal('SIGTERM');
    const exit = await sleeper.exited;
    assert.equal(exit.signal, 'SIGTERM');
  });

  test(
    'the upgrade is authenticated: no key 401, another tenant 404, a browser-style subprotocol key ' + 'works',
    async () => {
      const wsUrl = `${server().url.replace('http', 'ws')}/v1/microvms/${vm.id}/shell`;
      const refused = (ws: WebSocket): Promise<number> =>
        new Promise((resolve) => {
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('open', () => resolve(101));
          ws.on('error', () => undefined);
        });
      assert.equal(await refused(new WebSocket(wsUrl)), 401);
      const tenant = await server().capsule.tenants.create({ name: 'shell-other' });
      const { key } = await server().capsule.tenants.createApiKey(tenant.id);
      assert.equal(await refused(new WebSocket(wsUrl, { headers: { authorization: `Bearer ${key}` } })), 404);
      await assert.rejects(new Capsule({ baseUrl: server().url, apiKey: key }).microvms.get(vm.id));

      const browserStyle = new WebSocket(`${wsUrl}?rows=10&cols=20`, [
        'capsule.v1',
        `capsule.bearer.${server().adminKey}`,
      ]);
      assert.equal(await refused(browserStyle), 101);
      assert.equal(browserStyle.protocol, 'capsule.v1', 'the key is never echoed back as the protocol');
      browserStyle.close();
    },
  );

  test('capsule shell from a pipe runs the typed lines and exits with the shell status', async () => {
    const result = await runCli(server().url, server().adminKey, ['shell', vm.id], 'echo hi-$((1+1))\nexit 5\n');
    assert.equal(result.code, 5, result.stderr);
    assert.match(result.stdout, /hi-2/);
  });
});

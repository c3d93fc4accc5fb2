// AWS's ways into a MicroVM that are not plain headers: WebSocket subprotocols on the endpoint
// (`lambda-microvms`, `lambda-microvms.authentication.<token>`, `lambda-microvms.port.<n>`; the answer selects
// `lambda-microvms`; none of it, nor any x-aws-proxy-* header, reaches the app) and the AWS shell
// (CreateMicrovmShellAuthToken, then a WebSocket to /shell: session_init, raw terminal bytes, resize, close 1000
// `shell exited`), gated by SHELL_INGRESS when the VM was run with ingress connectors; and the example that
// shows both (examples/aws-sdk/run.mjs), run as a user would.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import {
  ConflictException,
  CreateMicrovmAuthTokenCommand,
  CreateMicrovmShellAuthTokenCommand,
  LambdaMicrovmsClient,
  RunMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { useTestServer } from './helpers.js';

/**
 * A guest app on port 9000 that answers a WebSocket handshake by hand (selecting the first subprotocol offered, if
 * any) and sends one text frame: the headers it received. A plain GET answers them as JSON.
 */
const APP = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const server = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1')
    .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  const offered = req.headers['sec-websocket-protocol'];
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Accept: ' + accept];
  if (offered) lines.push('Sec-WebSocket-Protocol: ' + offered.split(',')[0].trim());
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  const body = Buffer.from(JSON.stringify(req.headers));
  socket.write(Buffer.concat([Buffer.from([0x81, 126, body.length >> 8, body.length & 255]), body]));
});
server.listen(9000, '0.0.0.0');
`;
const run = promisify(execFile);
const connector = (name: string): string =>
  `arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:${name}`;

type Opened = { protocol: string; headers: Record<string, string> } | { status: number };

/** Open a WebSocket, and read its first message (the app's view of the headers), or the refusal's status. */
function openWs(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.once('message', (data) => {
      resolve({ protocol: ws.protocol, headers: JSON.parse(String(data)) });
      ws.terminate();
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('AWS-style WebSockets on the endpoint, and the AWS shell', () => {
  const server = useTestServer();
  const client = (): LambdaMicrovmsClient =>
    new LambdaMicrovmsClient({
      region: 'us-east-1',
      endpoint: server().url,
      credentials: JSON.parse(fs.readFileSync(path.join(server().dataDir, 'aws-credentials'), 'utf8')),
      maxAttempts: 1,
    });

  test('subprotocols authorise and pick the port; the app sees none of AWS’s', async () => {
    const aws = client();
    const vm = await aws.send(
      new RunMicrovmCommand({ imageIdentifier: 'base', ingressNetworkConnectors: [connector('ALL_INGRESS')] }),
    );
    try {
      const guest = await server().capsule.microvms.get(vm.microvmId ?? '');
      await guest.files.write('/root/ws-app.js', APP);
      await guest.exec('nohup node /root/ws-app.js >/dev/null 2>&1 &');
      const token = async (port: number): Promise<string> =>
        (
          await aws.send(
            new CreateMicrovmAuthTokenCommand({
              microvmIdentifier: vm.microvmId,
              expirationInMinutes: 5,
              allowedPorts: [{ port }],
            }),
          )
        ).authToken?.['X-aws-proxy-auth'] ?? '';
      const t9000 = await token(9000);
      const wsUrl = `${vm.endpoint?.replace(/^http/, 'ws')}/socket`;
      const aws9000 = ['lambda-microvms', `lambda-microvms.authentication.${t9000}`, 'lambda-microvms.port.9000'];
      let opened = await openWs(wsUrl, aws9000);
      for (let i = 0; i < 50 && 'status' in opened && opened.status === 502; i++) {
        await new Promise((r) => setTimeout(r, 200)); // the app is still starting
        opened = await openWs(wsUrl, aws9000);
      }
      assert.ok('protocol' in opened, JSON.stringify(opened));
      assert.equal(opened.protocol, 'lambda-microvms', 'the handshake selects AWS’s marker');
      assert.equal(opened.headers['sec-websocket-protocol'], undefined, 'AWS’s subprotocols stay with Capsule');
      // the app's own subprotocol beside AWS's: the app chooses, and sees only its own
      const chat = await openWs(wsUrl, [...aws9000, 'chat']);
      assert.ok('protocol' in chat);
      assert.deepEqual([chat.protocol, chat.headers['sec-websocket-protocol']], ['chat', 'chat']);
      // a port the token does not allow: 403; no marker: the subprotocol token is not looked at (401)
      const t8080 = await token(8080);
      const wrongPort = ['lambda-microvms', `lambda-microvms.authentication.${t8080}`, 'lambda-microvms.port.9000'];
      assert.deepEqual(await openWs(wsUrl, wrongPort), { status: 403 });
      assert.deepEqual(await openWs(wsUrl, [`lambda-microvms.authentication.${t9000}`]), { status: 401 });
      // every x-aws-proxy-* header is Capsule's, over HTTP and WebSocket alike
      const reserved = { 'X-aws-proxy-auth': t9000, 'X-aws-proxy-port': '9000', 'X-aws-proxy-force-h2': 'true' };
      const seen = (await (await fetch(`${vm.endpoint}/`, { headers: reserved })).json()) as Record<string, string>;
      assert.deepEqual(
        Object.keys(seen).filter((h) => h.startsWith('x-aws-proxy-')),
        [],
      );
      const viaWs = await openWs(wsUrl, [], reserved);
      assert.ok('headers' in viaWs);
      assert.deepEqual(
        Object.keys(viaWs.headers).filter((h) => h.startsWith('x-aws-proxy-')),
        [],
      );
      // this VM was run with ingress connectors and no SHELL_INGRESS: no shell for it
      await assert.rejects(
        aws.send(new CreateMicrovmShellAuthTokenCommand({ microvmIdentifier: vm.microvmId, expirationInMinutes: 5 })),
        (err) => err instanceof ConflictException && /SHELL_INGRESS/.test(err.message),
      );
    } finally {
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    }
  });

  test('the AWS shell: session_init, raw bytes both ways, resize, close 1000 "shell exited"', async () => {
    const aws = client();
    const vm = await aws.send(new RunMicrovmCommand({ imageIdentifier: 'base' }));
    try {
      const answer = await aws.send(
        new CreateMicrovmShellAuthTokenCommand({ microvmIdentifier: vm.microvmId, expirationInMinutes: 5 }),
      );
      const token = answer.authToken?.['X-aws-proxy-auth'] ?? assert.fail('no token');
      // a shell token reaches no port
      assert.equal((await fetch(`${vm.endpoint}/`, { headers: { 'X-aws-proxy-auth': token } })).status, 403);
      const ws = new WebSocket(`${vm.endpoint?.replace(/^http/, 'ws')}/shell`, [
        'lambda-microvms',
        `lambda-microvms.authentication.${token}`,
      ]);
      const frames: Array<{ text: string }> = [];
      let output = '';
      ws.on('message', (data, isBinary) => {
        if (isBinary) output += String(data);
        else frames.push({ text: String(data) });
      });
      const closed = new Promise<[number, string]>((resolve) => ws.once('close', (c, r) => resolve([c, String(r)])));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      assert.equal(ws.protocol, 'lambda-microvms');
      ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
      ws.send(Buffer.from('stty size; echo hi-$((6*7)); exit\n'));
      const [code, reason] = await closed;
      assert.deepEqual([code, reason], [1000, 'shell exited']);
      const init = JSON.parse(frames[0]?.text ?? '{}') as { type?: string; session_id?: string };
      assert.equal(init.type, 'session_init');
      assert.match(init.session_id ?? '', /^[0-9a-f-]{36}$/);
      assert.match(output, /40 120/, `the terminal took the resize: ${JSON.stringify(output)}`);
      assert.match(output, /hi-42/);
    } finally {
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    }
  });

  test('examples/aws-sdk/run.mjs as documented: a python MicroVM, a shell, a page through its endpoint', async () => {
    const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/aws-sdk/run.mjs');
    const { stdout } = await run(process.execPath, [script], {
      env: {
        ...process.env,
        CAPSULE_URL: server().url,
        CAPSULE_AWS_CREDENTIALS: path.join(server().dataDir, 'aws-credentials'),
      },
      timeout: 120_000,
    });
    assert.match(stdout, /GET http:\/\/\S+\/endpoints\/(mvm-\w+)\/index\.html → hello from mvm-\w+\n/);
    assert.match(stdout, /MicroVM mvm-\w+ terminated/);
  });
});

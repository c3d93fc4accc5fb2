import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import net from 'node:net';
import { sniffName } from './client-hello.js';

/** The first bytes a real TLS client sends for `servername`. */
async function clientHello(servername?: string): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const first = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))),
  );
  const port = (server.address() as net.AddressInfo).port;
  const client = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  client.on('error', () => undefined);
  const hello = await first;
  client.destroy();
  server.close();
  return hello;
}

describe('sniffName', () => {
  test('reads the SNI of a real TLS ClientHello, and sees none when the client sends none', async () => {
    assert.deepEqual(sniffName(await clientHello('tls-one.example.org')), { kind: 'tls', name: 'tls-one.example.org' });
    assert.equal(sniffName(await clientHello()).kind, 'none');
  });

  test('a ClientHello cut short is incomplete, at every length', async () => {
    const hello = await clientHello('pypi.org');
    for (let n = 0; n < hello.length - 1; n += 7)
      assert.notEqual(sniffName(hello.subarray(0, n)).kind, 'tls', `length ${n}`);
  });

  test('reads the Host header of an HTTP/1.1 request, port dropped', () => {
    assert.deepEqual(sniffName(Buffer.from('GET / HTTP/1.1\r\nHost: Allowed.Example.com:80\r\nAccept: */*\r\n\r\n')), {
      kind: 'http',
      name: 'allowed.example.com',
    });
    assert.equal(sniffName(Buffer.from('GET / HTTP/1.1\r\nHost: a')).kind, 'incomplete');
  });

  test('refuses what it cannot name: no Host, two Hosts, not HTTP', () => {
    assert.equal(sniffName(Buffer.from('GET / HTTP/1.1\r\nAccept: x\r\n\r\n')).kind, 'none');
    assert.equal(sniffName(Buffer.from('GET / HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\n\r\n')).kind, 'none');
    assert.equal(sniffName(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')).kind, 'none');
  });
});

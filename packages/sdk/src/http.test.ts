import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '@capsule/protocol';
import { NetworkError, TimeoutError } from './errors.js';
import { Http } from './http.js';

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

test(
  "the SDK's own failures carry their own codes: NETWORK, TIMEOUT, UNEXPECTED_RESPONSE (never " + 'INTERNAL)',
  async () => {
    // nothing listens on a port just closed: refused
    const closed = await serve(() => undefined);
    await closed.close();
    const refused = await new Http({ baseUrl: closed.url, apiKey: 'k', maxRetries: 0 })
      .send('GET', '/v1/microvms')
      .catch((e) => e);
    assert.ok(refused instanceof NetworkError, String(refused));
    assert.equal(refused.code, ErrorCode.NETWORK);
    assert.match(refused.message, /cannot reach Capsule for GET \/v1\/microvms/);

    // a server that never answers, and the caller's deadline
    const silent = await serve(() => undefined);
    try {
      const late = await new Http({ baseUrl: silent.url, apiKey: 'k' })
        .send('GET', '/v1/microvms', { signal: AbortSignal.timeout(200) })
        .catch((e) => e);
      assert.ok(late instanceof TimeoutError, String(late));
      assert.equal(late.code, ErrorCode.TIMEOUT);
    } finally {
      await silent.close();
    }

    // a proxy's page instead of Capsule's envelope, and a body that is not what the schema says
    const foreign = await serve((req, res) => {
      if (req.url === '/html') res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"not":"a list"}');
    });
    try {
      const client = new Http({ baseUrl: foreign.url, apiKey: 'k', maxRetries: 0 });
      const page = await client.send('GET', '/html').catch((e) => e);
      assert.equal(page.code, ErrorCode.UNEXPECTED_RESPONSE);
      assert.match(page.message, /HTTP 502.*Bad Gateway/);
      const { MicroVMList } = await import('@capsule/protocol');
      const wrong = await client.json(MicroVMList, 'GET', '/list').catch((e) => e);
      assert.equal(wrong.code, ErrorCode.UNEXPECTED_RESPONSE);
    } finally {
      await foreign.close();
    }
  },
);

// SigV4 verification against requests signed the way AWS's clients sign them (the JS SDK's signer, and the
// header set botocore signs), and every way one can be wrong.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { CapsuleError } from '@capsule/protocol';
import { verifySigV4, type ReceivedRequest } from './sigv4.js';

const KEY = { accessKeyId: 'AKIACAPSULETEST00001', secretAccessKey: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXg' };
const HOST = '127.0.0.1:7070';
const lookup = async (id: string) =>
  id === KEY.accessKeyId ? { secretAccessKey: KEY.secretAccessKey, tenantId: 'acme' } : null;

/** Query strings as the SDK writes them: RFC 3986 escaping, repeated keys repeated. */
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

interface Signable {
  method: string;
  path: string; // as sent: labels already escaped
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string;
  secret?: string;
  date?: Date;
  region?: string;
  service?: string;
  /** botocore: no x-amz-content-sha256 header */
  noContentHash?: boolean;
}

async function signed(s: Signable): Promise<ReceivedRequest> {
  const body = Buffer.from(s.body ?? '');
  const headers: Record<string, string> = { host: HOST, ...s.headers };
  if (!s.noContentHash) headers['x-amz-content-sha256'] = createHash('sha256').update(body).digest('hex');
  const signer = new SignatureV4({
    service: s.service ?? 'lambda',
    region: s.region ?? 'us-east-1',
    credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: s.secret ?? KEY.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: !s.noContentHash, // botocore neither sends nor signs one
  });
  const out = await signer.sign(
    { method: s.method, protocol: 'http:', hostname: HOST, path: s.path, query: s.query ?? {}, headers, body },
    { signingDate: s.date ?? new Date() },
  );
  const query = Object.entries(s.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((one) => `${rfc3986(k)}=${rfc3986(one)}`))
    .join('&');
  const lowered = Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return { method: s.method, rawUrl: query ? `${s.path}?${query}` : s.path, headers: lowered, body };
}

async function awsErrorOf(request: ReceivedRequest, nowMs?: number): Promise<string> {
  const err = await verifySigV4(request, lookup, nowMs).then(
    () => assert.fail('verified'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CapsuleError, String(err));
  assert.equal(err.status, 401);
  return `${err.details?.awsErrorType}: ${err.message}`;
}

describe('SigV4 verification', () => {
  test('a signed GET with an escaped ARN label, a path prefix with //, and repeated query keys', async () => {
    const arn = 'arn:aws:lambda:us-east-1:000000000000:microvm-image:my app/ä';
    const request = await signed({
      method: 'GET',
      path: `/aws//2025-09-09/microvm-images/${rfc3986(arn)}/versions`,
      query: { maxResults: '2', nextToken: 'a+b/c==', tagKeys: ['k', 'j'] },
      headers: { 'x-amz-user-agent': 'aws-sdk-js/3', 'amz-sdk-request': 'attempt=1; max=3' },
    });
    assert.deepEqual(await verifySigV4(request, lookup), {
      accessKeyId: KEY.accessKeyId,
      tenantId: 'acme',
      region: 'us-east-1',
    });
  });

  test('a signed POST with a JSON body, and botocore requests that send no payload hash', async () => {
    const body = JSON.stringify({ imageIdentifier: 'my-app', clientToken: 'c1' });
    const json = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const post = await signed({ method: 'POST', path: '/2025-09-09/microvms', headers: json, body });
    assert.equal((await verifySigV4(post, lookup)).tenantId, 'acme');
    const cli = await signed({ method: 'POST', path: '/2025-09-09/microvms', body, noContentHash: true, region: 'x' });
    assert.equal(cli.headers['x-amz-content-sha256'], undefined);
    assert.equal((await verifySigV4(cli, lookup)).region, 'x');
  });

  test('a body changed after signing is refused, with or without a payload hash header', async () => {
    const body = JSON.stringify({ imageIdentifier: 'my-app' });
    const sdk = await signed({ method: 'POST', path: '/2025-09-09/microvms', body });
    sdk.body = Buffer.from(JSON.stringify({ imageIdentifier: 'evil' }));
    assert.match(await awsErrorOf(sdk), /^InvalidSignatureException: .*x-amz-content-sha256/);
    const cli = await signed({ method: 'POST', path: '/2025-09-09/microvms', body, noContentHash: true });
    cli.body = Buffer.from('{}');
    assert.match(await awsErrorOf(cli), /^InvalidSignatureException: The request signature we calculated/);
    const unsigned = await signed({ method: 'GET', path: '/2025-09-09/microvms' });
    unsigned.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    assert.match(await awsErrorOf(unsigned), /^InvalidSignatureException/);
  });

  test('a wrong secret, a changed path or query, and a foreign header value are refused', async () => {
    assert.match(
      await awsErrorOf(await signed({ method: 'GET', path: '/2025-09-09/microvms', secret: 'wrong' })),
      /^InvalidSignatureException: The request signature we calculated does not match/,
    );
    const moved = await signed({ method: 'GET', path: '/2025-09-09/microvms/mvm-a', query: { maxResults: '5' } });
    assert.match(
      await awsErrorOf({ ...moved, rawUrl: '/2025-09-09/microvms/mvm-b?maxResults=5' }),
      /^InvalidSignatureException/,
    );
    assert.match(
      await awsErrorOf({ ...moved, rawUrl: '/2025-09-09/microvms/mvm-a?maxResults=50' }),
      /^InvalidSignatureException/,
    );
    assert.match(await awsErrorOf({ ...moved, method: 'DELETE' }), /^InvalidSignatureException/);
    assert.match(
      await awsErrorOf({ ...moved, headers: { ...moved.headers, host: 'evil:7070' } }),
      /^InvalidSignatureException/,
    );
  });

  test('more than 15 minutes of clock skew either way: "Signature expired"', async () => {
    const request = await signed({
      method: 'GET',
      path: '/2025-09-09/microvms',
      date: new Date('2026-12-02T10:00:00Z'),
    });
    const at = Date.parse('2026-12-02T10:00:00Z');
    assert.equal((await verifySigV4(request, lookup, at + 14 * 60_000)).tenantId, 'acme');
    assert.match(await awsErrorOf(request, at + 16 * 60_000), /^InvalidSignatureException: Signature expired/);
    assert.match(await awsErrorOf(request, at - 16 * 60_000), /^InvalidSignatureException: Signature expired/);
  });

  test('a missing, malformed or foreign Authorization, and an unknown key, are named as AWS names them', async () => {
    const ok = await signed({ method: 'GET', path: '/2025-09-09/microvms' });
    const without = { ...ok, headers: { ...ok.headers, authorization: undefined } };
    assert.match(await awsErrorOf(without), /^MissingAuthenticationTokenException/);
    const bearer = { ...ok, headers: { ...ok.headers, authorization: 'Bearer cap_x' } };
    assert.match(await awsErrorOf(bearer), /^IncompleteSignatureException/);
    const s3 = await signed({ method: 'GET', path: '/2025-09-09/microvms', service: 's3' });
    assert.match(await awsErrorOf(s3), /^IncompleteSignatureException: .*'lambda'/);
    const unknown = {
      ...ok,
      headers: {
        ...ok.headers,
        authorization: ok.headers.authorization?.toString().replace(KEY.accessKeyId, 'AKIANOBODY'),
      },
    };
    assert.match(await awsErrorOf(unknown), /^UnrecognizedClientException: The security token included/);
    const badDate = { ...ok, headers: { ...ok.headers, 'x-amz-date': '2026-12-02' } };
    assert.match(await awsErrorOf(badDate), /^IncompleteSignatureException: X-Amz-Date/);
  });
});

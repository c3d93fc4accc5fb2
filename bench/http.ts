// HTTP helpers the benchmarks share: the API with the admin key, timed GETs, a free loopback port.
import http from 'node:http';
import type { RunningServer } from '@capsule/server';

/** One API call with the admin key; the JSON answer ({} for none or an NDJSON stream). Throws on an error status. */
export async function api(
  server: RunningServer,
  method: string,
  route: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(server.url + route, {
    method,
    headers: {
      authorization: `Bearer ${server.adminKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text.startsWith('{') && !text.includes('\n{') ? JSON.parse(text) : {};
}

/** One GET on a fresh connection: status, body bytes, milliseconds. Rejects on a network error or timeout. */
export function httpGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
  address = '127.0.0.1',
): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address, port, path, headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Poll GET / until it answers 200 (a guest app coming up). */
export async function until200(
  port: number,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
  address = '127.0.0.1',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await httpGet(port, '/', headers, 5000, address).catch(() => null))?.status === 200) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`port ${port} never answered 200 within ${timeoutMs} ms`);
}

// One HTTP/1.1 request to a port inside the guest, over an agent tunnel (no host port, any egress):
// the app's lifecycle hooks and the warm-up request before its snapshot.
import http from 'node:http';
import type { AgentClient } from '../vmm/agent-client.js';

const MAX_BODY_CHARS = 64 * 1024;

/**
 * Null when nothing accepts connections on the port; rejects on a timeout or a broken answer. The
 * deadline is the host's own timer over the whole exchange: http's `timeout` option watches socket
 * idleness, which an agent tunnel never reports, so a guest that accepts and never answers would hang
 * its caller (and the sweeper or build queue behind it) for good.
 */
export async function guestRequest(
  agent: AgentClient,
  port: number,
  method: string,
  path: string,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; body: string } | null> {
  const deadline = Date.now() + timeoutMs;
  const tunnel = await agent.openTunnel(port, timeoutMs).catch(() => null);
  if (!tunnel) return null;
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(body);
    const req = http.request(
      {
        method,
        path,
        headers: { host: 'localhost', 'content-type': 'application/octet-stream', 'content-length': payload.length },
        createConnection: () => tunnel as never,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text.length < MAX_BODY_CHARS ? (text += chunk) : undefined));
        res.on('end', () => settle(null, { status: res.statusCode ?? 0, body: text }));
        res.on('error', (err) => settle(err));
      },
    );
    const timer = setTimeout(
      () => {
        const err = new Error(`${method} ${path} on guest port ${port} did not answer within ${timeoutMs} ms`);
        settle(err);
        req.destroy(err);
        tunnel.destroy();
      },
      Math.max(0, deadline - Date.now()),
    );
    const settle = (err: Error | null, answer?: { status: number; body: string }): void => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(answer!);
    };
    req.on('error', (err) => settle(err));
    req.end(payload);
  });
}

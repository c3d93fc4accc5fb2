// AWS's WebSocket subprotocols for a MicroVM endpoint, for clients that cannot set headers (browsers):
//   Sec-WebSocket-Protocol: lambda-microvms, lambda-microvms.authentication.<token>, lambda-microvms.port.<n>
// The `lambda-microvms` marker is required; its entries are Capsule's, never forwarded to the app, and the
// handshake's answer selects `lambda-microvms` (a browser refuses a handshake that selects none of what it offered)
// unless the client also offered the app's own subprotocols, which the app then chooses from.
import type { Duplex } from 'node:stream';

export const AWS_WS_PROTOCOL = 'lambda-microvms';
const AUTH_PREFIX = `${AWS_WS_PROTOCOL}.authentication.`;
const PORT_PREFIX = `${AWS_WS_PROTOCOL}.port.`;
/** A 101 head larger than this is not an HTTP answer the proxy rewrites. */
const MAX_HEAD_BYTES = 64 * 1024;

export interface AwsWsOffer {
  token?: string;
  port?: string;
  /** The app's own subprotocols, offered beside AWS's. */
  others: string[];
}

/** The AWS entries of a Sec-WebSocket-Protocol offer; null when it lacks the `lambda-microvms` marker. */
export function awsWsOffer(header: string | string[] | undefined): AwsWsOffer | null {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (!offered.includes(AWS_WS_PROTOCOL)) return null;
  const offer: AwsWsOffer = { others: [] };
  for (const p of offered) {
    if (p.startsWith(AUTH_PREFIX)) offer.token = p.slice(AUTH_PREFIX.length);
    else if (p.startsWith(PORT_PREFIX)) offer.port = p.slice(PORT_PREFIX.length);
    else if (p !== AWS_WS_PROTOCOL && !p.startsWith(`${AWS_WS_PROTOCOL}.`)) offer.others.push(p);
  }
  return offer;
}

/**
 * Copy the app's handshake answer from `upstream` to `client`, adding `Sec-WebSocket-Protocol: lambda-microvms` to
 * a 101 that selected none; then the bytes after it flow as they come. Resolves once the head went through.
 */
export function relaySelectingAwsProtocol(upstream: Duplex, client: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length <= MAX_HEAD_BYTES) return;
      upstream.off('data', onData);
      upstream.pause();
      if (end >= 0) {
        const text = head.subarray(0, end).toString('latin1');
        const switching = /^HTTP\/1\.1 101\b/.test(text);
        const selected = /\r\nsec-websocket-protocol:/i.test(text);
        if (switching && !selected)
          head = Buffer.concat([
            head.subarray(0, end),
            Buffer.from(`\r\nSec-WebSocket-Protocol: ${AWS_WS_PROTOCOL}`, 'latin1'),
            head.subarray(end),
          ]);
      }
      client.write(head);
      resolve();
    };
    upstream.on('data', onData);
    upstream.once('close', () => resolve()); // the app hung up first: nothing to relay
  });
}

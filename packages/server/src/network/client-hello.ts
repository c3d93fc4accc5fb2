// The name a client says it is connecting to, from the first bytes of its connection: the SNI of a
// TLS ClientHello, or the Host header of an HTTP/1.x request. Enough of each format to read that name;
// anything else is "no name" (and a domain-admitted flow without one is refused).

export type Sniffed = { kind: 'tls' | 'http'; name: string } | { kind: 'incomplete' } | { kind: 'none'; why: string };

const TLS_HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;

export function sniffName(head: Buffer): Sniffed {
  if (head.length === 0) return { kind: 'incomplete' };
  return head[0] === TLS_HANDSHAKE ? tlsServerName(head) : httpHost(head);
}

function tlsServerName(buf: Buffer): Sniffed {
  if (buf.length < 5) return { kind: 'incomplete' };
  const recordEnd = 5 + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return { kind: 'incomplete' };
  let p = 5;
  if (buf[p] !== CLIENT_HELLO) return { kind: 'none', why: 'not a TLS ClientHello' };
  p += 4 + 2 + 32; // handshake header, client version, random
  const need = (n: number): boolean => p + n <= recordEnd;
  if (!need(1)) return { kind: 'none', why: 'truncated ClientHello' };
  p += 1 + buf[p]; // session id
  if (!need(2)) return { kind: 'none', why: 'truncated ClientHello' };
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (!need(1)) return { kind: 'none', why: 'truncated ClientHello' };
  p += 1 + buf[p]; // compression methods
  if (!need(2)) return { kind: 'none', why: 'ClientHello without extensions (no SNI)' };
  const extensionsEnd = Math.min(recordEnd, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extensionsEnd) {
    const type = buf.readUInt16BE(p);
    const length = buf.readUInt16BE(p + 2);
    p += 4;
    if (type === SERVER_NAME_EXTENSION && p + 5 <= extensionsEnd && buf[p + 2] === 0) {
      const nameLength = buf.readUInt16BE(p + 3);
      if (p + 5 + nameLength > extensionsEnd) break;
      return { kind: 'tls', name: buf.toString('ascii', p + 5, p + 5 + nameLength).toLowerCase() };
    }
    p += length;
  }
  return { kind: 'none', why: 'TLS ClientHello without SNI' };
}

function httpHost(buf: Buffer): Sniffed {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0)
    return /^[A-Z]{1,16}( |$)/.test(text) ? { kind: 'incomplete' } : { kind: 'none', why: 'neither TLS nor HTTP' };
  if (!/^[A-Z]{1,16} \S+ HTTP\/1\.[01]\r\n/.test(text)) return { kind: 'none', why: 'neither TLS nor HTTP' };
  const hosts = [...text.slice(0, end).matchAll(/\r\nhost:[ \t]*([^\r\n]*)/gi)].map((m) => m[1].trim());
  if (hosts.length !== 1)
    return { kind: 'none', why: hosts.length ? 'more than one Host header' : 'HTTP request without a Host header' };
  const name = hosts[0].replace(/:\d+$/, '').toLowerCase();
  return { kind: 'http', name };
}

// The fake internet's servers, run inside its network namespace by fake-internet.ts: HTTP hosts, a TLS
// host answering two names on one address, a DNS server, and a fake cloud metadata service. Prints
// "ready" once everything listens. Plain JavaScript: it runs under `node` alone, with no loader.
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dns = require('dns-packet');
const [certDir, recordsJson] = process.argv.slice(2);
const records = JSON.parse(recordsJson); // { name: address }

// guests reset connections (and get theirs cut by policy changes): no socket error may end this process
const listen = (server, port, address) => {
  server.on('connection', (socket) => socket.on('error', () => {}));
  server.on('tlsClientError', () => {});
  return new Promise((resolve, reject) => server.once('error', reject).listen(port, address, resolve));
};
const answer = (req, res) => {
  if (req.url.startsWith('/bytes/')) {
    // a throughput source: N MiB of zeros
    const mib = Number(req.url.slice('/bytes/'.length));
    res.writeHead(200, { 'content-length': mib * 1048576 });
    const chunk = Buffer.alloc(1048576);
    let left = mib;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!res.write(chunk)) return res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  res.end(`hello from ${req.socket.localAddress} host=${req.headers.host}`);
};

const waits = [];
for (const address of ['198.51.100.10', '198.51.100.11', '203.0.113.10', '169.254.169.254'])
  waits.push(listen(http.createServer(answer), 80, address));
const tls = https.createServer(
  { key: fs.readFileSync(`${certDir}/key.pem`), cert: fs.readFileSync(`${certDir}/cert.pem`) },
  (req, res) => res.end(`tls ${req.socket.servername}`),
);
waits.push(listen(tls, 443, '198.51.100.20'));
// a plain TCP service on another port: it says who it is
waits.push(
  listen(
    net.createServer((s) => s.end('tcp 203.0.113.10:2222\n')),
    2222,
    '203.0.113.10',
  ),
);

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const query = dns.decode(msg);
  const q = query.questions[0];
  const name = q.name.toLowerCase();
  const address = records[name];
  const answers = address && q.type === 'A' ? [{ type: 'A', name: q.name, ttl: 60, data: address }] : [];
  udp.send(
    dns.encode({
      type: 'response',
      id: query.id,
      flags: dns.RECURSION_AVAILABLE | (address ? 0 : 3),
      questions: query.questions,
      answers,
    }),
    rinfo.port,
    rinfo.address,
  );
});
waits.push(new Promise((resolve) => udp.bind(53, '198.51.100.53', resolve)));
// so the test can tell whether a guest reached this DNS server directly
waits.push(
  listen(
    net.createServer((s) => s.end()),
    53,
    '198.51.100.53',
  ),
);

await Promise.all(waits);
console.log('ready');

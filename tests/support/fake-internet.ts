// A fake internet for network tests and benchmarks, built in a network namespace of the test's own:
// hosts on TEST-NET addresses (198.51.100.0/24, 203.0.113.0/24) and a fake cloud metadata service at
// 169.254.169.254, reached from the host through a veth. Nothing sent to it leaves this machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Names its DNS server (198.51.100.53) answers. */
const FAKE_RECORDS: Record<string, string> = {
  'allowed.example.com': '198.51.100.10',
  'a.wild.example.net': '198.51.100.11',
  'b.wild.example.net': '198.51.100.11',
  'other.example.com': '203.0.113.10',
  'tls-one.example.org': '198.51.100.20',
  'tls-two.example.org': '198.51.100.20',
  'metadata.example.com': '169.254.169.254',
};
export const FAKE_DNS = '198.51.100.53';
const ROUTES = ['198.51.100.0/24', '203.0.113.0/24', '169.254.169.254/32'];
const ADDRESSES = [
  '198.51.100.10',
  '198.51.100.11',
  '198.51.100.20',
  '198.51.100.53',
  '203.0.113.10',
  '169.254.169.254',
];

export interface FakeInternet {
  close(): Promise<void>;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

export async function startFakeInternet(): Promise<FakeInternet> {
  const tag = `fi${process.pid % 100000}`;
  const netns = `test-${tag}`;
  const [hostEnd, nsEnd] = [`${tag}h`, `${tag}n`];
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-internet-'));
  let server: ChildProcess | null = null;
  const close = async (): Promise<void> => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
    }
    for (const route of ROUTES) {
      try {
        ip('route', 'del', route, 'dev', hostEnd);
      } catch {
        // not added
      }
    }
    try {
      ip('link', 'del', hostEnd);
    } catch {
      // not made
    }
    try {
      ip('netns', 'del', netns);
    } catch {
      // not made
    }
    fs.rmSync(certDir, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', netns);
    ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', netns);
    ip('addr', 'add', '100.127.254.1/30', 'dev', hostEnd);
    ip('link', 'set', hostEnd, 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'addr', 'add', '100.127.254.2/30', 'dev', nsEnd);
    for (const a of ADDRESSES) ip('-n', netns, 'addr', 'add', `${a}/32`, 'dev', 'lo');
    ip('-n', netns, 'link', 'set', nsEnd, 'up');
    ip('-n', netns, 'route', 'add', 'default', 'via', '100.127.254.1');
    for (const route of ROUTES) ip('route', 'add', route, 'dev', hostEnd, 'via', '100.127.254.2');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=tls-one.example.org',
        '-addext',
        'subjectAltName=DNS:tls-one.example.org,DNS:tls-two.example.org',
        '-keyout',
        `${certDir}/key.pem`,
        '-out',
        `${certDir}/cert.pem`,
      ],
      { stdio: 'ignore' },
    );
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-internet-server.mjs');
    server = spawn('ip', ['netns', 'exec', netns, process.execPath, script, certDir, JSON.stringify(FAKE_RECORDS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      server!.once('exit', (code) => reject(new Error(`fake internet servers exited (${code})`)));
    });
    return { close };
  } catch (err) {
    await close();
    throw err;
  }
}

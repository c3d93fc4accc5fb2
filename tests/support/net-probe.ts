// A probe run inside a guest (by its own Node.js): tries each target at once and prints one JSON
// object, target → "ok: <first line of the answer>" or "blocked: <why>". A drop shows as a timeout.
import type { MicroVM } from '@capsule/sdk';

export type Target =
  | { kind: 'http'; url: string; host?: string }
  | { kind: 'tls'; host: string; servername: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'dns'; name: string }
  /** a DNS query straight to `server`, bypassing Capsule's resolver */
  | { kind: 'dns-direct'; server: string; name: string };

const PROBE_JS = String.raw`
const [http, tls, net, dns] = ['http', 'tls', 'net', 'dns'].map(require);
// long enough for a TLS handshake in a busy TCG guest; what is dropped waits it out
const TIMEOUT_MS = 5000;
const targets = JSON.parse(process.argv[1]);
const first = (s) => String(s).split('\n')[0].slice(0, 120);
function probe(t) {
  return new Promise((resolve) => {
    const done = (v) => { clearTimeout(timer); resolve(v); };
    const timer = setTimeout(() => done('blocked: timeout'), TIMEOUT_MS);
    const fail = (e) => done('blocked: ' + (e.code || e.message));
    if (t.kind === 'http') {
      const u = new URL(t.url);
      const headers = t.host ? { host: t.host } : {};
      http.get({ host: u.hostname, port: u.port || 80, path: u.pathname, headers }, (r) => {
        let body = ''; r.on('data', (c) => (body += c)); r.on('end', () => done('ok: ' + first(body)));
      }).on('error', fail);
    } else if (t.kind === 'tls') {
      const s = tls.connect({ host: t.host, port: 443, servername: t.servername, rejectUnauthorized: false }, () => {
        s.end('GET / HTTP/1.0\r\n\r\n');
      });
      let body = ''; s.on('data', (c) => (body += c));
      s.on('end', () => done(body ? 'ok: ' + first(body.split('\r\n\r\n')[1] || body) : 'blocked: closed'));
      s.on('error', fail);
    } else if (t.kind === 'tcp') {
      const s = net.connect(t.port, t.host, () => { s.destroy(); done('ok: connected'); }).on('error', fail);
    } else if (t.kind === 'dns') {
      dns.promises.resolve4(t.name).then((a) => done('ok: ' + a.join(',')), fail);
    } else {
      const r = new dns.promises.Resolver({ timeout: 1500, tries: 1 }); r.setServers([t.server]);
      r.resolve4(t.name).then((a) => done('ok: ' + a.join(',')), fail);
    }
  });
}
Promise.all(targets.map(probe)).then((results) => {
  process.stdout.write(JSON.stringify(results) + "\n", () => process.exit(0));
});
`;

/** Run every probe in one exec; results in the order of `targets`. */
async function probe(vm: MicroVM, targets: Target[]): Promise<string[]> {
  const result = await vm.exec(['node', '-e', PROBE_JS, JSON.stringify(targets)]);
  if (result.exitCode !== 0) throw new Error(`probe failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

/** probe() as a map from a label to its result, for readable assertions. */
export async function probeAll(vm: MicroVM, targets: Record<string, Target>): Promise<Record<string, string>> {
  const labels = Object.keys(targets);
  const results = await probe(
    vm,
    labels.map((l) => targets[l]),
  );
  return Object.fromEntries(labels.map((l, i) => [l, results[i]]));
}

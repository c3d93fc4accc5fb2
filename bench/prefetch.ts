// Validate-recorded prefetch: launch → first HTTP 200 for an image whose build ran its validate hook (which records
// the memory pages a restored guest touches), with the read-ahead on and off, beside the floor (a bare QEMU
// restoring the same snapshot) — each run with the snapshot's memory file dropped from the page cache first, as
// after a host restart or a fresh fetch from S3. On a warm page cache a prefetch finds everything there already.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { zipOf } from '../tests/support/zip-writer.js';
import { api, until200 } from './http.js';
import { floorNetworks } from './floor-net.js';
import { type FloorRestore, floorRestoreTo200 } from './restore-floor.js';
import { ratio, summarize } from './stats.js';

const RUNS = Number(process.env.BENCH_PREFETCH_RUNS ?? 6);
const SHAPE = { vcpuCount: 1, memoryMib: 1024 };
/** The page on 8080; every hook (validate among them) answers 200 on 9000. */
const APP = `import http.server, threading
class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'hello'
        self.send_response(200)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.send_response(200)
        self.send_header('content-length', '0')
        self.end_headers()
    def log_message(self, *args):
        pass
hooks = http.server.ThreadingHTTPServer(('0.0.0.0', 9000), App)
threading.Thread(target=hooks.serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(('0.0.0.0', 8080), App).serve_forever()
`;
const CAPSULE_JSON = {
  runtime: 'python',
  start: ['python3', 'app.py'],
  port: 8080,
  ...SHAPE,
  hooks: { style: 'aws', enabled: ['validate'] },
};

/** Drop the file's pages from the page cache (posix_fadvise DONTNEED through dd), so the next reader goes to disk. */
function dropFromCache(file: string): void {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

export async function benchPrefetch(work: string): Promise<Record<string, unknown>> {
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, warmPoolSize: 0 },
    createLogger(process.stderr, true),
  );
  const apiPort = Number(new URL(server.url).port);
  const floorNets = await floorNetworks(work);
  const floorNet = await floorNets.attach('floor', { egress: 'none', allow: [], deny: [] });
  try {
    const zip = zipOf([
      { name: 'capsule.json', data: JSON.stringify(CAPSULE_JSON) },
      { name: 'app.py', data: APP },
    ]);
    const created = await fetch(`${server.url}/v1/images?name=prefetch-app`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/zip' },
      body: new Uint8Array(zip),
    });
    if (created.status !== 202) throw new Error(`image create: ${created.status} ${await created.text()}`);
    for (let state = ''; state !== 'SUCCESSFUL'; ) {
      await new Promise((r) => setTimeout(r, 200));
      state = String((await api(server, 'GET', '/v1/images/prefetch-app/versions/1')).state);
      if (state === 'FAILED') throw new Error('the prefetch-app build failed');
    }
    const log = await (
      await fetch(`${server.url}/v1/images/prefetch-app/versions/1/build`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      })
    ).text();
    const touchedMib = Number(/it touched ([\d.]+) MiB/.exec(log)?.[1] ?? Number.NaN);
    const snapshotDir = path.join(server.config.dataDir, 'blobs', 'images', 'default', 'prefetch-app', '1', 'snapshot');
    const memory = path.join(snapshotDir, 'memory');
    const bare: FloorRestore = {
      snapshotDir,
      runtime: server.runtimes.get('python'),
      shape: SHAPE,
      accelerator: server.accelerator.accelerator,
      net: floorNet,
      port: 8080,
    };
    const launch = async (prefetch: boolean): Promise<number> => {
      server.config.pagePrefetch = prefetch; // read at each launch (ImageService.snapshotOf)
      dropFromCache(memory);
      const begin = performance.now();
      const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'prefetch-app' });
      const { token } = (await api(server, 'POST', `/v1/microvms/${vm.id}/auth-tokens`, {})) as { token: string };
      await until200(apiPort, { host: `${vm.id}.localhost:${apiPort}`, 'x-capsule-auth': token });
      const ms = performance.now() - begin;
      await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
      return ms;
    };
    const floor: number[] = [];
    const withPrefetch: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      dropFromCache(memory);
      floor.push(await floorRestoreTo200(bare, path.join(work, `floor-${i}`), `floor-${i}`));
      // alternated, so drift in the host's state falls on both
      without.push(await launch(false));
      withPrefetch.push(await launch(true));
      console.log(
        `  cold launch ${i + 1}/${RUNS}: prefetch ${withPrefetch[i].toFixed(0)} ms, none ${without[i].toFixed(0)} ms ` +
          `(floor ${floor[i].toFixed(0)} ms)`,
      );
    }
    const summary = { floor: summarize(floor), withPrefetch: summarize(withPrefetch), without: summarize(without) };
    return {
      touchedMib,
      coldLaunchToFirst200Ms: {
        ...summary,
        ratioWithPrefetch: ratio(summary.withPrefetch, summary.floor),
        ratioWithout: ratio(summary.without, summary.floor),
      },
    };
  } finally {
    server.config.pagePrefetch = true;
    await server.close();
    await floorNets.release('floor', floorNet.slot);
    await floorNets.close();
  }
}

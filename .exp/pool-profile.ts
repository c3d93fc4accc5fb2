import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { api } from '../bench/http.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-prof-'));
fs.chmodSync(work, 0o755);
const server = await startServer({ dataDir: path.join(work, 'data'), port: 0, warmPoolSize: 1 }, createLogger(process.stderr, false));
const clones = async () => Number(/^capsule_warm_pool_clones\{runtime="python"\} (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminKey}` } })).text())?.[1] ?? 0);
try {
  await server.snapshotsBuilt;
  for (let i = 0; i < 6; i++) {
    while ((await clones()) < 1) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, Number(process.env.PRE_MS ?? 300)));
    const t0 = performance.now();
    const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'python' });
    const t1 = performance.now();
    await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
    const t2 = performance.now();
    await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
    const t3 = performance.now();
    console.log(`launch ${(t1 - t0).toFixed(0)} exec1 ${(t2 - t1).toFixed(0)} exec2 ${(t3 - t2).toFixed(0)} from ${vm.launchedFrom}`);
    await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
  }
} finally {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
}

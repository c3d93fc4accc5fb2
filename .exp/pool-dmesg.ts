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
  while ((await clones()) < 1) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 3000));
  const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'python' });
  const out = await fetch(`${server.url}/v1/microvms/${vm.id}/exec`, { method: 'POST', headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ command: ['sh', '-c', 'cat /sys/devices/system/clocksource/clocksource0/current_clocksource /sys/devices/system/clocksource/clocksource0/available_clocksource; dmesg | tail -25; cat /proc/cmdline'] }) });
  console.log(await out.text());
  await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
} finally {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
}

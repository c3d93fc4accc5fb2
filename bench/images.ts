// Images: the Flask example's build time by phase, and launch → first HTTP 200 through the endpoint,
// beside the floor measured in the same run: a bare QEMU restoring the same app-ready snapshot by
// hand (same flags) with a hostfwd port, and a direct request to the guest's port until it answers 200.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipDirectory } from '../packages/cli/src/commands/images.js';
import { startServer } from '../packages/server/src/index.js';
import { createLogger } from '../packages/server/src/log.js';
import { loadDeviceState } from '../packages/server/src/vmm/migration.js';
import { QmpClient } from '../packages/server/src/vmm/qmp.js';
import { qemuArgs, vmPaths } from '../packages/server/src/vmm/qemu-args.js';
import { ratio, summarize } from './stats.js';

const RUNS = Number(process.env.BENCH_IMAGE_RUNS ?? 8);
const FLASK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/flask-app');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function status(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

async function until200(port: number, headers: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await status(port, headers)) === 200) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('never answered 200');
}

export async function benchImages(work: string): Promise<Record<string, unknown>> {
  const server = await startServer({ dataDir: path.join(work, 'data'), port: 0 }, createLogger(process.stderr, true));
  const apiPort = Number(new URL(server.url).port);
  const headers = { authorization: `Bearer ${server.adminKey}` };
  const api = async (method: string, route: string, body?: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(server.url + route, { method, headers: { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? {} : ((await response.json()) as Record<string, unknown>);
  };
  try {
    const t0 = performance.now();
    const upload = await fetch(`${server.url}/v1/images?name=flask-app`, { method: 'POST', headers: { ...headers, 'content-type': 'application/zip' }, body: new Uint8Array(zipDirectory(FLASK)) });
    const acceptedMs = performance.now() - t0;
    if (upload.status !== 202) throw new Error(`image create: ${upload.status} ${await upload.text()}`);
    let state = 'PENDING';
    while (state !== 'SUCCESSFUL') {
      await new Promise((r) => setTimeout(r, 100));
      state = String((await api('GET', '/v1/images/flask-app/versions/1')).state);
      if (state === 'FAILED') throw new Error('the flask-app build failed');
    }
    const totalMs = performance.now() - t0;
    const log = await (await fetch(`${server.url}/v1/images/flask-app/versions/1/build`, { headers })).text();
    const phase = (re: RegExp): number => Number(re.exec(log)?.[1] ?? NaN);

    const snap = path.join(server.config.dataDir, 'images', 'default', 'flask-app', '1', 'snapshot');
    const runtime = server.runtimes.get('python');
    const floor: number[] = [];
    const capsule: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // floor: bare QEMU, same argv, restoring the same snapshot; the app answers on a hostfwd port
      const vmDir = path.join(work, `floor-${i}`);
      fs.mkdirSync(vmDir);
      const overlay = path.join(vmDir, 'disk.qcow2');
      await new Promise((r) => spawn('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.join(snap, 'disk.qcow2'), overlay]).once('exit', r));
      const hostPort = await freePort();
      const spec = { vmDir, kernelPath: runtime.kernelPath, initrdPath: runtime.initrdPath, overlayPath: overlay, vcpuCount: 1, memoryMib: 512, accelerator: server.accelerator.accelerator, egress: 'none' as const, hostname: `floor-${i}`, memory: { kind: 'file' as const, path: path.join(snap, 'memory'), share: false }, hostForwards: [{ hostPort, guestPort: 8080 }] };
      const start = performance.now();
      const child = spawn('qemu-system-x86_64', qemuArgs({ ...spec, incoming: true }), { stdio: 'ignore' });
      try {
        const qmp = await QmpClient.connect(vmPaths(vmDir).qmp, 10_000);
        await loadDeviceState(qmp, path.join(vmDir, 'in.sock'), path.join(snap, 'state'), { ignoreShared: true, timeoutMs: 60_000 });
        await qmp.execute('cont');
        await until200(hostPort);
        floor.push(performance.now() - start);
        qmp.close();
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        fs.rmSync(vmDir, { recursive: true, force: true });
      }

      // Capsule: POST /v1/microvms → a token → the page through the endpoint
      const begin = performance.now();
      const vm = await api('POST', '/v1/microvms', { imageName: 'flask-app' });
      const { token } = (await api('POST', `/v1/microvms/${vm.id}/auth-tokens`, {})) as { token: string };
      await until200(apiPort, { host: `${vm.id}.localhost:${apiPort}`, 'x-capsule-auth': token });
      capsule.push(performance.now() - begin);
      await api('DELETE', `/v1/microvms/${vm.id}`);
      console.log(`  flask launch ${i + 1}/${RUNS}: capsule ${capsule[i].toFixed(0)} ms (floor ${floor[i].toFixed(0)} ms)`);
    }
    const launch = { floor: summarize(floor), capsule: summarize(capsule) };
    return {
      flaskBuildMs: { uploadAccepted: Math.round(acceptedMs), layer: phase(/layer built in (\d+) ms/), appReadySnapshot: phase(/app ready and snapshotted in (\d+) ms/), total: Math.round(totalMs) },
      flaskLaunchToFirst200Ms: { ...launch, ratio: ratio(launch.capsule, launch.floor) },
    };
  } finally {
    await server.close();
  }
}

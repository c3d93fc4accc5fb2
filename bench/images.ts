// Images: the Flask example's build time by phase, and launch → first HTTP 200 through the endpoint,
// beside the floor measured in the same run: a bare QEMU restoring the same app-ready snapshot by
// hand (same flags) with a hostfwd port, and a direct request to the guest's port until it answers 200.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buffer } from 'node:stream/consumers';
import { zipDirectory } from '@capsule/cli/zip-dir';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { api, until200 } from './http.js';
import { floorNetworks } from './floor-net.js';
import { type FloorRestore, floorRestoreTo200 } from './restore-floor.js';
import { ratio, summarize } from './stats.js';

const RUNS = Number(process.env.BENCH_IMAGE_RUNS ?? 8);
const FLASK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/flask-app');

export async function benchImages(work: string): Promise<Record<string, unknown>> {
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, warmPoolSize: 0 },
    createLogger(process.stderr, true),
  );
  const apiPort = Number(new URL(server.url).port);
  const headers = { authorization: `Bearer ${server.adminKey}` };
  const floorNets = await floorNetworks(work);
  const floorNet = await floorNets.attach('floor', { egress: 'none', allow: [], deny: [] });
  try {
    const t0 = performance.now();
    const upload = await fetch(`${server.url}/v1/images?name=flask-app`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/zip' },
      body: new Uint8Array(await buffer(zipDirectory(FLASK).stream)),
    });
    const acceptedMs = performance.now() - t0;
    if (upload.status !== 202) throw new Error(`image create: ${upload.status} ${await upload.text()}`);
    let state = 'PENDING';
    while (state !== 'SUCCESSFUL') {
      await new Promise((r) => setTimeout(r, 100));
      state = String((await api(server, 'GET', '/v1/images/flask-app/versions/1')).state);
      if (state === 'FAILED') throw new Error('the flask-app build failed');
    }
    const totalMs = performance.now() - t0;
    const log = await (await fetch(`${server.url}/v1/images/flask-app/versions/1/build`, { headers })).text();
    const phase = (re: RegExp): number => Number(re.exec(log)?.[1] ?? NaN);

    // the version's app-ready snapshot, where the default (local) blob store keeps it
    const snap = path.join(server.config.dataDir, 'blobs', 'images', 'default', 'flask-app', '1', 'snapshot');
    const bare: FloorRestore = {
      snapshotDir: snap,
      runtime: server.runtimes.get('python'),
      shape: { vcpuCount: 1, memoryMib: 512 },
      accelerator: server.accelerator.accelerator,
      net: floorNet,
      port: 8080,
    };
    const floor: number[] = [];
    const capsule: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // floor: bare QEMU, same argv, restoring the same snapshot in a namespace; the app answers on its uplink address
      floor.push(await floorRestoreTo200(bare, path.join(work, `floor-${i}`), `floor-${i}`));

      // Capsule: POST /v1/microvms → a token → the page through the endpoint
      const begin = performance.now();
      const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'flask-app' });
      const { token } = (await api(server, 'POST', `/v1/microvms/${vm.id}/auth-tokens`, {})) as { token: string };
      await until200(apiPort, { host: `${vm.id}.localhost:${apiPort}`, 'x-capsule-auth': token });
      capsule.push(performance.now() - begin);
      await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
      console.log(
        `  flask launch ${i + 1}/${RUNS}: capsule ${capsule[i].toFixed(0)} ms (floor ${floor[i].toFixed(0)} ms)`,
      );
    }
    const launch = { floor: summarize(floor), capsule: summarize(capsule) };
    return {
      flaskBuildMs: {
        uploadAccepted: Math.round(acceptedMs),
        layer: phase(/layer built in (\d+) ms/),
        appReadySnapshot: phase(/app ready and snapshotted in (\d+) ms/),
        total: Math.round(totalMs),
      },
      flaskLaunchToFirst200Ms: { ...launch, ratio: ratio(launch.capsule, launch.floor) },
    };
  } finally {
    await server.close();
    await floorNets.release('floor', floorNet.slot);
    await floorNets.close();
  }
}

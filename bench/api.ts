// API overhead, each beside its floor in the same run:
//   exec `true`   POST /v1/microvms/{id}/exec (NDJSON)         vs  agent.exec on a VM driven in-process
//   endpoint GET  through the proxy (Host name + token)         vs  the same guest app straight through its namespace
//   endpoint MiB/s 64 MiB download through the proxy            vs  the same download straight through its namespace
//   GET /v1/microvms/{id} requests per second (10 in flight)    vs  GET /healthz (no auth, no store)
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger, hostLaunchOptions, Machine } from '@capsule/server/internals';
import { floorNetworks } from './floor-net.js';
import { api, httpGet, until200 } from './http.js';
import { ratio, summarize, timed } from './stats.js';

const EXEC_RUNS = Number(process.env.BENCH_API_EXEC_RUNS ?? 50);
const GET_RUNS = Number(process.env.BENCH_API_GET_RUNS ?? 100);
const RPS_REQUESTS = Number(process.env.BENCH_API_RPS_REQUESTS ?? 2000);
const DOWNLOAD_MIB = 64;

const APP = `require('http').createServer((req, res) => {
  if (req.url !== '/big') return res.end('ok');
  let left = ${DOWNLOAD_MIB} * 16; const chunk = Buffer.alloc(65536, 7);
  const more = () => { while (left-- > 0) if (!res.write(chunk)) return res.once('drain', more); res.end(); };
  more();
}).listen(8080); // all addresses: the floor reaches the guest's own address, the tunnel its 127.0.0.1`;

/** One GET that must answer 200; resolves with [ms, bytes]. */
async function get(
  port: number,
  pathName: string,
  headers: Record<string, string> = {},
  address = '127.0.0.1',
): Promise<[number, number]> {
  const answer = await httpGet(port, pathName, headers, 30_000, address);
  if (answer.status !== 200) throw new Error(`GET ${pathName}: ${answer.status}`);
  return [answer.ms, answer.bytes];
}

async function requestsPerSecond(total: number, inFlight: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < total) await fn();
    }),
  );
  return Math.round(total / ((performance.now() - t0) / 1000));
}

export async function benchApi(work: string): Promise<Record<string, unknown>> {
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, warmPoolSize: 0 },
    createLogger(process.stderr, true),
  );
  const apiPort = Number(new URL(server.url).port);
  let direct: Machine | null = null;
  const floorNets = await floorNetworks(work);
  const floorNet = await floorNets.attach('api-floor', { egress: 'none', allow: [], deny: [] });
  let vm: { id: string } | null = null;
  try {
    await server.snapshotsBuilt;
    const created = (await api(server, 'POST', '/v1/microvms', { imageName: 'base' })) as { id: string };
    vm = created;
    await fetch(`${server.url}/v1/microvms/${vm.id}/files?path=/root/app.js`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${server.adminKey}` },
      body: APP,
    });
    await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['node', '/root/app.js'], background: true });
    const { token } = (await api(server, 'POST', `/v1/microvms/${vm.id}/auth-tokens`, {})) as { token: string };
    const endpoint = { host: `${vm.id}.localhost:${apiPort}`, 'x-capsule-auth': token };

    // the floor VM: same image and shape, driven in-process, its app reached straight through its own
    // namespace (as Capsule's direct endpoint path goes), with no proxy, token or Host routing
    const runtime = server.runtimes.get('base');
    const vmDir = path.join(work, 'direct');
    direct = await Machine.launch({
      ...hostLaunchOptions(server.config, runtime),
      vmDir,
      vcpuCount: 1,
      memoryMib: 512,
      accelerator: server.accelerator.accelerator,
      hostname: 'bench-direct',
      jail: null, // the raw floor: bare QEMU
      netns: floorNet.netns,
    });
    await direct.agent.writeFile(
      '/root/app.js',
      (async function* () {
        yield Buffer.from(APP);
      })(),
    );
    await direct.agent.exec({ command: ['node', '/root/app.js'], background: true }).result;
    await until200(8080, {}, 30_000, floorNet.nsAddress);
    await until200(apiPort, endpoint);

    const restExec = await timed(EXEC_RUNS, () =>
      api(server, 'POST', `/v1/microvms/${created.id}/exec`, { command: ['true'] }),
    );
    const agentExec = await timed(EXEC_RUNS, () => direct!.agent.exec({ command: ['true'] }).result);
    const proxied = await timed(GET_RUNS, () => get(apiPort, '/', endpoint));
    const floorGets = await timed(GET_RUNS, () => get(8080, '/', {}, floorNet.nsAddress));
    const [proxiedMs] = await get(apiPort, '/big', endpoint);
    const [floorMs] = await get(8080, '/big', {}, floorNet.nsAddress);
    const mibPerSecond = (ms: number) => Math.round((DOWNLOAD_MIB / (ms / 1000)) * 10) / 10;
    const getVm = await requestsPerSecond(RPS_REQUESTS, 10, () => api(server, 'GET', `/v1/microvms/${created.id}`));
    const health = await requestsPerSecond(RPS_REQUESTS, 10, async () => (await fetch(`${server.url}/healthz`)).text());

    const exec = { rest: summarize(restExec), agentDirect: summarize(agentExec) };
    const endpointGet = { proxy: summarize(proxied), direct: summarize(floorGets) };
    return {
      execTrueMs: { ...exec, ratio: ratio(exec.rest, exec.agentDirect) },
      endpointGetMs: { ...endpointGet, ratio: ratio(endpointGet.proxy, endpointGet.direct) },
      endpointDownloadMiBPerSecond: { proxy: mibPerSecond(proxiedMs), direct: mibPerSecond(floorMs) },
      requestsPerSecond: { getMicroVM: getVm, healthz: health },
    };
  } finally {
    // closing a server leaves its VMs running (a restart re-adopts them): end ours first
    if (vm) await api(server, 'DELETE', `/v1/microvms/${vm.id}`).catch(() => undefined);
    await direct?.stop().catch(() => undefined);
    await floorNets.release('api-floor', floorNet.slot);
    await floorNets.close();
    await server.close();
    fs.rmSync(path.join(work, 'direct'), { recursive: true, force: true });
  }
}

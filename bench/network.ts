// Network isolation numbers, each beside its floor in the same run:
//   launch   restore of a base snapshot with no namespace (user-mode network: the code before per-VM
//            namespaces)  vs  the base ready snapshot restored in a pooled namespace  vs  in a namespace
//            made at launch (each until the agent answers a ping)
//   endpoint GET through the proxy's direct path (the VM's namespace) and through the agent tunnel
//            vs  a direct connection from the host to the same guest port
//   egress   a 64 MiB download from the fake internet by the guest (policy all)  vs  by the host itself
//   policy   PATCH …/network until the new policy is in force
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import {
  createLogger,
  ReadySnapshots,
  captureSnapshot,
  EgressLogs,
  VmNetworks,
  slotAddresses,
  slotOfNetns,
  hostLaunchOptions,
  Machine,
} from '@capsule/server/internals';
import { startFakeInternet, FAKE_DNS } from '../tests/support/fake-internet.js';
import { api, httpGet, until200 } from './http.js';
import { ratio, summarize, timed } from './stats.js';

const RUNS = Number(process.env.BENCH_NETWORK_RUNS ?? 10);
const GET_RUNS = Number(process.env.BENCH_NETWORK_GET_RUNS ?? 100);
const DOWNLOAD_MIB = 64;
const APP = `const h = (req, res) => res.end('ok');
require('http').createServer(h).listen(8080, '0.0.0.0'); // the direct path reaches it
require('http').createServer(h).listen(8081, '127.0.0.1'); // only the agent tunnel does`;

/** Where the server's namespace for `id` is (its owner file names the VM). */
function nsAddressOf(id: string, pool: string): string {
  for (const name of fs.readdirSync('/run/capsule/netns')) {
    const owner = JSON.parse(fs.readFileSync(path.join('/run/capsule/netns', name), 'utf8')) as { vmId: string | null };
    if (owner.vmId === id) return slotAddresses(pool, slotOfNetns(pool, name)!).nsAddress;
  }
  throw new Error(`no namespace for ${id}`);
}

export async function benchNetwork(work: string): Promise<Record<string, unknown>> {
  const log = createLogger(process.stderr, true);
  const internet = await startFakeInternet();
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, dnsUpstream: FAKE_DNS, warmPoolSize: 0 },
    log,
  );
  const apiPort = Number(new URL(server.url).port);
  let vm: { id: string } | null = null;
  try {
    await server.snapshotsBuilt;
    const { config } = server;
    const runtime = server.runtimes.get('base');
    const shape = { vcpuCount: config.defaultVcpuCount, memoryMib: config.defaultMemoryMib };
    const snapshot = new ReadySnapshots(config, server.runtimes, server.accelerator.accelerator, null, log).get(
      'base',
      shape,
    );
    if (!snapshot) throw new Error('no ready snapshot of base');
    // the code before namespaces restored a snapshot taken on user-mode networking (a tap's does not
    // restore there): take one like it, of the same runtime and shape
    const launchBase = {
      ...hostLaunchOptions(config, runtime),
      ...shape,
      accelerator: server.accelerator.accelerator,
      jail: null,
    }; // the namespace's cost alone
    const plainDir = path.join(work, 'plain-snapshot');
    fs.mkdirSync(plainDir, { recursive: true });
    const plain = {
      kind: 'snapshot' as const,
      ...(await captureSnapshot(plainDir, { ...launchBase, hostname: 'capsule' }, async () => undefined, {}, null)),
    };
    /** Milliseconds from the start (namespace attach included) until the restored guest's agent answers. */
    const launch = async (name: string, nets: VmNetworks | null): Promise<number> => {
      const t0 = performance.now();
      const net = nets ? await nets.attach(name, { egress: 'none', allow: [], deny: [] }) : null;
      const machine = await Machine.launch({
        ...launchBase,
        vmDir: path.join(work, 'vms', name),
        hostname: name,
        netns: net?.netns,
        restore: net ? snapshot : plain,
      });
      await machine.agent.ping();
      const ms = performance.now() - t0;
      await machine.stop();
      if (net) await nets!.release(name, net.slot);
      await new Promise((r) => setTimeout(r, 300)); // let the pool refill, as between real launches
      return ms;
    };
    // the same restore three ways; the network parts use their own VmNetworks (pooled, and not)
    const networks = (poolSize: number): VmNetworks =>
      new VmNetworks(
        {
          pool: '10.201.0.0/16',
          poolSize,
          privateAllow: [],
          upstreams: [],
          dataDir: path.join(work, `net-${poolSize}`),
        },
        new EgressLogs(path.join(work, `egress-${poolSize}`)),
        log,
      );
    const [pooled, unpooled] = [networks(2), networks(0)];
    await pooled.init(new Map());
    await unpooled.init(new Map());
    const samples = async (nets: VmNetworks | null, prefix: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < RUNS; i++) out.push(await launch(`${prefix}-${i}`, nets));
      return out;
    };
    const noNamespace = await samples(null, 'plain');
    const pooledLaunch = await samples(pooled, 'pooled');
    const unpooledLaunch = await samples(unpooled, 'unpooled');
    await pooled.close();
    await unpooled.close();

    vm = (await api(server, 'POST', '/v1/microvms', { imageName: 'base', network: { egress: 'all' } })) as {
      id: string;
    };
    await fetch(`${server.url}/v1/microvms/${vm.id}/files?path=/root/app.js`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${server.adminKey}` },
      body: APP,
    });
    await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['node', '/root/app.js'], background: true });
    const { token } = (await api(server, 'POST', `/v1/microvms/${vm.id}/auth-tokens`, {
      allowedPorts: [8080, 8081],
    })) as { token: string };
    const host = `${vm.id}.localhost:${apiPort}`;
    const nsAddress = nsAddressOf(vm.id, config.netPool);
    await until200(apiPort, { host, 'x-capsule-auth': token });
    const get = (port: number, headers: Record<string, string>, address?: string) => async (): Promise<void> => {
      const answer = await httpGet(port, '/', headers, 30_000, address);
      if (answer.status !== 200) throw new Error(`GET: ${answer.status}`);
    };
    const viaDirect = await timed(GET_RUNS, get(apiPort, { host, 'x-capsule-auth': token }));
    const viaTunnel = await timed(GET_RUNS, get(apiPort, { host: `8081-${host}`, 'x-capsule-auth': token }));
    const floor = await timed(GET_RUNS, get(8080, {}, nsAddress));

    // a policy change, PATCH until in force (the contract: within a second)
    const policies = [
      { egress: 'none' },
      { egress: 'allowlist', allow: ['allowed.example.com', '203.0.113.0/24'], deny: ['203.0.113.7'] },
      { egress: 'all' },
    ];
    const patchMs = await timed(30, (i) =>
      api(server, 'PATCH', `/v1/microvms/${vm!.id}/network`, policies[i % policies.length]),
    );

    const url = `http://198.51.100.10/bytes/${DOWNLOAD_MIB}`;
    const guest = await fetch(`${server.url}/v1/microvms/${vm.id}/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        command: [
          'node',
          '-e',
          `const t0 = Date.now(); require('http').get('${url}', (r) => { r.resume(); r.on('end', () => ` +
            `console.log(Date.now() - t0)); });`,
        ],
      }),
    }).then((r) => r.text());
    const guestMs = Number(Buffer.from(JSON.parse(guest.split('\n')[0]).stdout, 'base64').toString());
    const t0 = performance.now();
    await (await fetch(url)).arrayBuffer();
    const hostMs = performance.now() - t0;
    const mibPerSecond = (ms: number) => Math.round((DOWNLOAD_MIB / (ms / 1000)) * 10) / 10;

    const launchMs = {
      noNamespace: summarize(noNamespace),
      pooledNamespace: summarize(pooledLaunch),
      namespaceAtLaunch: summarize(unpooledLaunch),
    };
    const endpointGetMs = {
      directPath: summarize(viaDirect),
      agentTunnel: summarize(viaTunnel),
      floorDirectToGuest: summarize(floor),
    };
    return {
      launchMs: {
        ...launchMs,
        pooledRatio: ratio(launchMs.pooledNamespace, launchMs.noNamespace),
        atLaunchRatio: ratio(launchMs.namespaceAtLaunch, launchMs.noNamespace),
      },
      endpointGetMs: {
        ...endpointGetMs,
        directRatio: ratio(endpointGetMs.directPath, endpointGetMs.floorDirectToGuest),
        tunnelRatio: ratio(endpointGetMs.agentTunnel, endpointGetMs.floorDirectToGuest),
      },
      egressDownloadMiBPerSecond: { guest: mibPerSecond(guestMs), host: mibPerSecond(hostMs) },
      policyChangeMs: summarize(patchMs),
    };
  } finally {
    if (vm) await api(server, 'DELETE', `/v1/microvms/${vm.id}`).catch(() => undefined);
    await server.close();
    await internet.close();
  }
}

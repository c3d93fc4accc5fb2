// `npm run bench`: MicroVM core numbers beside raw floors measured in the same run, same flags.
//   boot:  spawn → agent ready  vs  spawn → first console line of a bare busybox init (same kernel/initrd)
//   ping / exec `true`  vs  a raw echo over the same virtio-serial port
//   10 MiB file write + read throughput; host RSS of an idle VM
//   launch / suspend / resume from snapshots (lifecycle.ts)
//   API overhead: REST exec, endpoint proxy latency/throughput, GET requests per second (api.ts)
//   images: Flask build time by phase; launch → first HTTP 200 through the endpoint (images.ts)
//   prefetch: cold-cache launch → first 200 with and without validate-recorded read-ahead (prefetch.ts)
//   network: launch with/without a namespace, endpoint direct path vs tunnel vs floor, egress MiB/s (network.ts)
//   jail: launch / suspend / resume jailed vs unjailed, idle host memory per VM (jail.ts)
//   sweeper: 50 idle VMs, one with a hung suspend hook: how late each suspends (sweeper.ts)
//   hosts: a request through another host's server or an api node (forwarded) vs to the VM's host directly (hosts.ts)
//   moves: resume on another host (state from S3) vs in place vs in place + raw download; drain of 10 VMs (moves.ts)
//   scaling: launch latency and host memory per VM at 1, 10, 50 and 100 idle VMs, with a chart (scaling.ts)
// BENCH_ONLY=jail,lifecycle runs only those sections (core boot/rtt always run).
// Writes bench/results/core-<timestamp>.json (and scaling-<timestamp>.svg).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  loadConfig,
  RuntimeRegistry,
  hostLaunchOptions,
  Machine,
  decideAccelerator,
  Jailer,
  createLogger,
} from '@capsule/server/internals';
import { bootFloor, floorInitrd } from './floor.js';
import { ratio, summarize } from './stats.js';
import { benchLifecycle } from './lifecycle.js';
import { benchApi } from './api.js';
import { benchImages } from './images.js';
import { benchPrefetch } from './prefetch.js';
import { benchNetwork } from './network.js';
import { benchJail } from './jail.js';
import { benchSweeper } from './sweeper.js';
import { benchScaling } from './scaling.js';
import { benchHosts } from './hosts.js';
import { benchMoves } from './moves.js';

const BOOT_RUNS = Number(process.env.BENCH_BOOT_RUNS ?? 5);
const RTT_RUNS = Number(process.env.BENCH_RTT_RUNS ?? 200);
const FILE_BYTES = 10 * 1024 * 1024;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const only = (section: string): boolean => ONLY === null || ONLY.has(section);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-bench-'));

async function main(): Promise<void> {
  fs.chmodSync(work, 0o755);
  const config = loadConfig({ dataDir: work });
  const runtimes = new RuntimeRegistry(config.cacheDir, work, config.agentBundlePath);
  runtimes.load();
  const runtime = runtimes.get('base');
  const jailer = Jailer.create(
    { ...config, memoryOverheadMib: config.vmMemoryOverheadMib },
    createLogger(process.stderr, true),
  );
  // as the server would run VMs here (TCG on this machine, KVM where the host has it)
  const accelerator = (await decideAccelerator(config, runtimes, jailer)).accelerator;
  const spec = (name: string) => ({
    vmDir: path.join(work, 'vms', name),
    kernelPath: runtime.kernelPath,
    initrdPath: runtime.initrdPath,
    vcpuCount: 1,
    memoryMib: 512,
    accelerator,
    hostname: name,
  });
  // jailed like a MicroVM; the uid is released with the machine
  const launch = async (name: string) => {
    const jail = jailer.forVm('bench', name);
    const machine = await Machine.launch({ ...hostLaunchOptions(config, runtime), ...spec(name), jail }).catch(
      (err: unknown) => {
        jail?.release();
        throw err;
      },
    );
    const stop = machine.stop.bind(machine);
    return Object.assign(machine, { stop: () => stop().finally(() => jail?.release()) });
  };

  console.log(`bench: ${BOOT_RUNS} boots each, ${RTT_RUNS} round trips each, accelerator ${accelerator}`);
  const floorRd = floorInitrd(runtime.initrdPath, work);
  const floorBoot: number[] = [];
  const capsuleBoot: number[] = [];
  for (let i = 0; i < BOOT_RUNS; i++) {
    const floorSpec = { ...spec(`floor-${i}`), initrdPath: floorRd, overlayPath: path.join(work, `floor-${i}.qcow2`) };
    const floor = await bootFloor(config.qemuBinary, floorSpec, runtime.rootfsPath, config.qemuImgBinary);
    floorBoot.push(floor.bootMs);
    await floor.stop();
    fs.rmSync(floorSpec.overlayPath, { force: true });
    const t0 = performance.now();
    const machine = await launch(`boot-${i}`);
    capsuleBoot.push(performance.now() - t0);
    await machine.stop();
    console.log(
      `  boot ${i + 1}/${BOOT_RUNS}: floor ${floorBoot[i].toFixed(0)} ms, capsule ${capsuleBoot[i].toFixed(0)} ms`,
    );
  }

  // Channel floor: raw echo of a 32-byte message over the same port.
  const floorSpec = { ...spec('floor-echo'), initrdPath: floorRd, overlayPath: path.join(work, 'floor-echo.qcow2') };
  const floor = await bootFloor(config.qemuBinary, floorSpec, runtime.rootfsPath, config.qemuImgBinary);
  const echo: number[] = [];
  for (let i = 0; i < RTT_RUNS; i++) echo.push(await floor.echo(randomBytes(32)));
  await floor.stop();

  const machine = await launch('rtt');
  const ping: number[] = [];
  const exec: number[] = [];
  for (let i = 0; i < RTT_RUNS; i++) {
    let t0 = performance.now();
    await machine.agent.ping();
    ping.push(performance.now() - t0);
    t0 = performance.now();
    await machine.agent.exec({ command: ['true'] }).result;
    exec.push(performance.now() - t0);
  }

  const payload = randomBytes(FILE_BYTES);
  const writeMs: number[] = [];
  const readMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    let t0 = performance.now();
    await machine.agent.writeFile(
      '/root/bench.bin',
      (async function* () {
        for (let o = 0; o < payload.length; o += 256 * 1024) yield payload.subarray(o, o + 256 * 1024);
      })(),
    );
    writeMs.push(performance.now() - t0);
    t0 = performance.now();
    let got = 0;
    const reader = machine.agent.readFile('/root/bench.bin', (chunk) => void (got += chunk.length));
    await reader.stat;
    await reader.done;
    readMs.push(performance.now() - t0);
    if (got !== FILE_BYTES) throw new Error(`read ${got} bytes, expected ${FILE_BYTES}`);
  }

  await sleep(5000); // let the guest settle to idle
  const rssKib = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${machine.pid}/status`, 'utf8'))?.[1] ?? NaN);
  await machine.stop();

  const boot = { floor: summarize(floorBoot), capsule: summarize(capsuleBoot) };
  const rtt = { rawEcho: summarize(echo), ping: summarize(ping), execTrue: summarize(exec) };
  const mibPerSecond = (ms: number[]) => Math.round((FILE_BYTES / 1024 / 1024 / (summarize(ms).p50 / 1000)) * 10) / 10;
  const at = new Date().toISOString();
  const stamp = at.replace(/[:.]/g, '-');
  const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const result = {
    benchmark: 'microvm-core',
    at,
    accelerator,
    host: { cpus: os.cpus().length, kernel: os.release() },
    units: 'ms unless named',
    bootMs: { ...boot, ratio: ratio(boot.capsule, boot.floor) },
    roundTripMs: { ...rtt, pingRatio: ratio(rtt.ping, rtt.rawEcho), execRatio: ratio(rtt.execTrue, rtt.rawEcho) },
    file10MiB: {
      writeMs: summarize(writeMs),
      readMs: summarize(readMs),
      writeMiBPerSecond: mibPerSecond(writeMs),
      readMiBPerSecond: mibPerSecond(readMs),
    },
    idleVmHostRssMib: Math.round(rssKib / 1024),
    lifecycle: only('lifecycle') ? await benchLifecycle(path.join(work, 'lifecycle')) : 'skipped',
    api: only('api') ? await benchApi(path.join(work, 'api')) : 'skipped',
    images: only('images') ? await benchImages(path.join(work, 'images')) : 'skipped',
    prefetch: only('prefetch') ? await benchPrefetch(path.join(work, 'prefetch')) : 'skipped',
    network: only('network') ? await benchNetwork(path.join(work, 'network')) : 'skipped',
    jail: only('jail') ? await benchJail(path.join(work, 'jail')) : 'skipped',
    sweeper: only('sweeper') ? await benchSweeper(path.join(work, 'sweeper')) : 'skipped',
    hosts: only('hosts') ? await benchHosts(path.join(work, 'hosts')) : 'skipped',
    moves: only('moves') ? await benchMoves(path.join(work, 'moves')) : 'skipped',
    scaling: only('scaling') ? await benchScaling(path.join(work, 'scaling'), resultsDir, stamp) : 'skipped',
  };
  const out = path.join(resultsDir, `core-${stamp}.json`);
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
  console.log(`wrote ${out}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));

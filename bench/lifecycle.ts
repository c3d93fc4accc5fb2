// Snapshot lifecycle numbers, each beside a raw floor measured in the same run with the same flags:
//   launch  POST /v1/microvms → first exec answered   vs  bare QEMU restoring the same ready snapshot by
//           hand (QMP migrate-incoming + cont) until the guest agent answers one raw ping frame
//   resume  POST …/resume → RUNNING                   vs  bare QEMU restoring a copy of the same suspended state
//   suspend POST …/suspend → QEMU gone, state durable  vs  writing + fsyncing as many bytes
//           (RAM state + dirtied disk)
//   launch from the warm pool (warm-pool.ts), against the same restore floor
// plus 10 launches at once, host memory (PSS) per idle launched VM, disk per suspended VM. This server has no
// warm pool: its launches restore, and no refill competes with what is measured.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameKind } from '@capsule/protocol';
import { startServer } from '@capsule/server';
import {
  createLogger,
  ReadySnapshots,
  savedIgnoringShared,
  loadDeviceState,
  QmpClient,
  qemuArgs,
  vmPaths,
  type MachineSpec,
} from '@capsule/server/internals';
import { api } from './http.js';
import { createOverlay } from './overlay.js';
import { floorNetworks, spawnQemuIn } from './floor-net.js';
import { ratio, summarize } from './stats.js';
import { benchPoolLaunch } from './warm-pool.js';

const RUNS = Number(process.env.BENCH_LIFECYCLE_RUNS ?? 10);

/**
 * Bare QEMU: same argv as a MicroVM (in a namespace, on its tap), restore by hand, until the agent answers a raw ping
 * frame.
 */
async function rawRestore(
  spec: MachineSpec & { netns: string },
  statePath: string,
  ignoreShared: boolean,
): Promise<number> {
  fs.mkdirSync(vmPaths(spec.vmDir).run, { recursive: true }); // a bare QEMU writes its sockets and console there
  const p = vmPaths(spec.vmDir);
  const t0 = performance.now();
  const child = spawnQemuIn(spec.netns, qemuArgs({ ...spec, incoming: true }));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`floor QEMU exited (${code}) during its restore`))),
  );
  exited.catch(() => undefined);
  try {
    const qmp = await QmpClient.connect(p.qmp, 10_000);
    const agent = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(p.agent, () => resolve(s));
      s.once('error', reject);
    });
    await loadDeviceState(qmp, path.join(spec.vmDir, 'in.sock'), statePath, { ignoreShared, timeoutMs: 60_000 });
    await qmp.execute('cont');
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        agent.once('data', () => resolve());
        agent.write(encodeFrame(1, FrameKind.MSG, 0, Buffer.from('{"type":"ping"}')));
      }),
    ]);
    const ms = performance.now() - t0;
    agent.destroy();
    qmp.close();
    return ms;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(spec.vmDir, { recursive: true, force: true });
  }
}

export function qemuPidOf(id: string): number {
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (path.basename(cmdline.split('\0')[0]).startsWith('qemu-system') && cmdline.includes(`/${id}/`))
        return Number(entry);
    } catch {
      // exited
    }
  }
  throw new Error(`no QEMU process for ${id}`);
}

/** Write `bytes` to a new file and fsync it: what saving that much state costs on this disk at least. */
function writeFloorMs(file: string, bytes: number): number {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const t0 = performance.now();
  const fd = fs.openSync(file, 'w');
  for (let left = bytes; left > 0; left -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const ms = performance.now() - t0;
  fs.rmSync(file);
  return ms;
}

/** Proportional set size: pages shared with other clones (the snapshot's memory file) count once overall. */
export function pssKib(pid: number): number {
  return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
}

export async function benchLifecycle(work: string): Promise<Record<string, unknown>> {
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, warmPoolSize: 0 },
    createLogger(process.stderr, process.env.BENCH_LOG !== '1'),
  );
  const floorNets = await floorNetworks(work);
  const floorNet = await floorNets.attach('floor', { egress: 'none', allow: [], deny: [] });
  try {
    await server.snapshotsBuilt;
    const runtime = 'python';
    // the snapshot this server launches from (the cache may still hold older formats or QEMU versions)
    const current = new ReadySnapshots(
      server.config,
      server.runtimes,
      server.accelerator.accelerator,
      null,
      createLogger(process.stderr, true),
    ).get(runtime, { vcpuCount: 1, memoryMib: 512 });
    if (!current) throw new Error('no ready snapshot for python');
    const snap = path.dirname(current.statePath);
    const spec = (
      name: string,
      memory: MachineSpec['memory'],
      overlayPath: string,
    ): MachineSpec & { netns: string } => ({
      vmDir: path.join(work, name),
      kernelPath: server.runtimes.get(runtime).kernelPath,
      initrdPath: server.runtimes.get(runtime).initrdPath,
      overlayPath,
      vcpuCount: 1,
      memoryMib: 512,
      accelerator: server.accelerator.accelerator,
      hostname: name,
      memory,
      netns: floorNet.netns,
    });

    const launchFloor: number[] = [];
    const launch: number[] = [];
    const suspend: number[] = [];
    const suspendWriteFloor: number[] = [];
    const resumeFloor: number[] = [];
    const resume: number[] = [];
    let suspendedDiskKib = 0;
    for (let i = 0; i < RUNS; i++) {
      const overlay = path.join(work, `floor-${i}.qcow2`);
      await createOverlay(path.join(snap, 'disk.qcow2'), overlay);
      launchFloor.push(
        await rawRestore(
          spec(`floor-${i}`, { kind: 'file', path: path.join(snap, 'memory'), share: false }, overlay),
          path.join(snap, 'state'),
          true,
        ),
      );
      fs.rmSync(overlay);

      let t0 = performance.now();
      const vm = await api(server, 'POST', '/v1/microvms', { imageName: runtime });
      await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
      launch.push(performance.now() - t0);
      await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, {
        command: ['sh', '-c', 'head -c 33554432 /dev/urandom > /tmp/dirty'],
      });

      t0 = performance.now();
      await api(server, 'POST', `/v1/microvms/${vm.id}/suspend`);
      suspend.push(performance.now() - t0);
      const suspended = path.join(server.config.dataDir, 'suspended', String(vm.id));
      // what the suspend wrote: the state and the disk overlay (the base-* files are hard links to the snapshot)
      suspendedDiskKib = Math.round(
        ['state', 'disk.qcow2'].reduce((sum, f) => sum + fs.statSync(path.join(suspended, f)).blocks * 512, 0) / 1024,
      );
      // the floor for that: writing and fsyncing as many bytes (RAM state + the disk the guest dirtied)
      suspendWriteFloor.push(
        writeFloorMs(path.join(work, `wfloor-${i}`), fs.statSync(path.join(suspended, 'state')).size + 32 * 2 ** 20),
      );

      // the same suspended files restored by hand: the state holds only the pages that differ from the
      // base memory, so the floor maps that base copy-on-write too
      const copy = path.join(work, `copy-${i}`);
      fs.mkdirSync(copy);
      for (const f of ['state', 'disk.qcow2']) fs.copyFileSync(path.join(suspended, f), path.join(copy, f));
      for (const f of ['base-memory', 'base-disk.qcow2']) fs.linkSync(path.join(suspended, f), path.join(copy, f));
      resumeFloor.push(
        await rawRestore(
          spec(
            `rfloor-${i}`,
            { kind: 'file', path: path.join(copy, 'base-memory'), share: false },
            path.join(copy, 'disk.qcow2'),
          ),
          path.join(copy, 'state'),
          savedIgnoringShared(path.join(copy, 'state')),
        ),
      );
      fs.rmSync(copy, { recursive: true });

      t0 = performance.now();
      await api(server, 'POST', `/v1/microvms/${vm.id}/resume`);
      resume.push(performance.now() - t0);
      await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
      console.log(
        `  cycle ${i + 1}/${RUNS}: launch ${launch[i].toFixed(0)} (floor ${launchFloor[i].toFixed(0)}), ` +
          `suspend ${suspend[i].toFixed(0)}, resume ${resume[i].toFixed(0)} (floor ${resumeFloor[i].toFixed(0)}) ms`,
      );
    }

    const t0 = performance.now();
    const ten = await Promise.all(
      Array.from({ length: 10 }, () => api(server, 'POST', '/v1/microvms', { imageName: runtime })),
    );
    const tenAtOnceMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 5000));
    const pss = ten.map((vm) => pssKib(qemuPidOf(String(vm.id))));
    await Promise.all(ten.map((vm) => api(server, 'DELETE', `/v1/microvms/${vm.id}`)));

    const l = { floor: summarize(launchFloor), capsule: summarize(launch) };
    const r = { floor: summarize(resumeFloor), capsule: summarize(resume) };
    await server.close();
    const pooled = await benchPoolLaunch(work, runtime, RUNS);
    return {
      launchMs: { ...l, ratio: ratio(l.capsule, l.floor) },
      launchFromPoolMs: { floor: l.floor, capsule: pooled, ratio: ratio(pooled, l.floor) },
      suspendMs: {
        capsule: summarize(suspend),
        writeFloor: summarize(suspendWriteFloor),
        ratio: ratio(summarize(suspend), summarize(suspendWriteFloor)),
      },
      suspendNote:
        '512 MiB guest with 32 MiB freshly dirtied before each suspend; only pages differing from the launch ' +
        'snapshot are written',
      resumeMs: { ...r, ratio: ratio(r.capsule, r.floor) },
      tenLaunchesAtOnceMs: Math.round(tenAtOnceMs),
      idleLaunchedVmHostPssMib: summarize(pss.map((k) => k / 1024)),
      suspendedVmDiskMib: Math.round(suspendedDiskKib / 1024),
    };
  } finally {
    await server.close();
    await floorNets.release('floor', floorNet.slot);
    await floorNets.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-bench-lc-'));
  fs.chmodSync(work, 0o755);
  benchLifecycle(work)
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .finally(() => fs.rmSync(work, { recursive: true, force: true }));
}

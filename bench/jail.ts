// The jail's cost: launch (POST → first exec answered), suspend and resume through the API, on a jailed
// server and on one with CAPSULE_UNSAFE_NO_JAIL (QEMU as root, no mount namespace, no cgroup), cycles
// interleaved in one run so both see the same machine; plus the idle host memory (PSS) of a launched VM
// either way and its cgroup's own figure.
import fs from 'node:fs';
import path from 'node:path';
import { startServer, type RunningServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { api } from './http.js';
import { pssKib, qemuPidOf } from './lifecycle.js';
import { ratio, summarize } from './stats.js';

const RUNS = Number(process.env.BENCH_JAIL_RUNS ?? 10);
const IDLE_SETTLE_MS = 3000;

interface Samples {
  launch: number[];
  suspend: number[];
  resume: number[];
  idlePssMib: number[];
}

async function cycle(server: RunningServer, samples: Samples, measureMemory: boolean): Promise<number | null> {
  let t0 = performance.now();
  const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'python' });
  await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
  samples.launch.push(performance.now() - t0);
  let cgroupMib: number | null = null;
  if (measureMemory) {
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    samples.idlePssMib.push(pssKib(qemuPidOf(String(vm.id))) / 1024);
    const usage = (await api(server, 'GET', `/v1/microvms/${vm.id}`)).usage as { memoryBytes: number } | null;
    cgroupMib = usage ? usage.memoryBytes / 2 ** 20 : null;
  }
  await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, {
    command: ['sh', '-c', 'head -c 8388608 /dev/urandom > /run/dirty'],
  });
  t0 = performance.now();
  await api(server, 'POST', `/v1/microvms/${vm.id}/suspend`);
  samples.suspend.push(performance.now() - t0);
  t0 = performance.now();
  await api(server, 'POST', `/v1/microvms/${vm.id}/resume`);
  samples.resume.push(performance.now() - t0);
  await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
  return cgroupMib;
}

export async function benchJail(work: string): Promise<Record<string, unknown>> {
  const log = createLogger(process.stderr, true);
  const jailed = await startServer({ dataDir: path.join(work, 'jailed'), port: 0, warmPoolSize: 0 }, log);
  const unjailed = await startServer(
    { dataDir: path.join(work, 'unjailed'), port: 0, unsafeNoJail: true, warmPoolSize: 0 },
    log,
  );
  try {
    await jailed.snapshotsBuilt;
    await unjailed.snapshotsBuilt;
    const withJail: Samples = { launch: [], suspend: [], resume: [], idlePssMib: [] };
    const without: Samples = { launch: [], suspend: [], resume: [], idlePssMib: [] };
    const cgroupMib: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const measure = i < 3;
      const cg = await cycle(jailed, withJail, measure);
      if (cg !== null) cgroupMib.push(cg);
      await cycle(unjailed, without, measure);
      console.log(
        `  jail cycle ${i + 1}/${RUNS}: launch ${withJail.launch[i].toFixed(0)} / ` +
          `${without.launch[i].toFixed(0)}, suspend ${withJail.suspend[i].toFixed(0)} / ` +
          `${without.suspend[i].toFixed(0)}, resume ${withJail.resume[i].toFixed(0)} / ` +
          `${without.resume[i].toFixed(0)} ms (jailed / unjailed)`,
      );
    }
    const compare = (key: 'launch' | 'suspend' | 'resume') => {
      const j = summarize(withJail[key]);
      const u = summarize(without[key]);
      return {
        jailed: j,
        unjailed: u,
        ratio: ratio(j, u),
        costMs: { p50: Math.round(j.p50 - u.p50), p95: Math.round(j.p95 - u.p95) },
      };
    };
    return {
      note:
        'the same API calls on a jailed server and an unjailed one (CAPSULE_UNSAFE_NO_JAIL=1), ' +
        'interleaved; python runtime, 512 MiB, 8 MiB dirtied before each suspend',
      launchMs: compare('launch'),
      suspendMs: compare('suspend'),
      resumeMs: compare('resume'),
      idleLaunchedVmHostPssMib: { jailed: summarize(withJail.idlePssMib), unjailed: summarize(without.idlePssMib) },
      idleLaunchedVmCgroupMemoryMib: summarize(cgroupMib),
    };
  } finally {
    await jailed.close();
    await unjailed.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

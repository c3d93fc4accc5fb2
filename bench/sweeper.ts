// The policy sweeper under load with one VM stuck: N VMs (default 50) with a 5 s idle policy, one of
// them an app whose suspend hook never answers (deadline 30 s). Reports, per VM, how late its suspend
// ended after its idle deadline, and the span from the first deadline to the last suspend; the floor is
// one VM's suspend through the API on the same server, measured first.
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { DEFAULT_API_LIMITS } from '@capsule/server';
import { zipOf } from '../tests/support/zip-writer.js';
import { api } from './http.js';
import { summarize, ratio } from './stats.js';

const VMS = Number(process.env.BENCH_SWEEPER_VMS ?? 50);
const IDLE_SECONDS = 5;
const LAUNCH_CONCURRENCY = 4;
const HUNG_APP = `require('http').createServer((req, res) => {
  if (req.url === '/capsule/v1/ready' || req.url === '/capsule/v1/run') return res.end('ok');
}).listen(9000, '127.0.0.1');
`;

export async function benchSweeper(work: string): Promise<Record<string, unknown>> {
  const log = createLogger(process.stderr, false);
  const limits = { ...DEFAULT_API_LIMITS, launchesPerSecond: 1000, launchBurst: 1000 };
  const server = await startServer(
    { dataDir: path.join(work, 'data'), port: 0, apiLimits: limits, warmPoolSize: 0 },
    log,
  );
  try {
    await server.snapshotsBuilt;
    const zip = zipOf([
      {
        name: 'capsule.json',
        data: JSON.stringify({ runtime: 'base', start: ['node', 'hung.js'], hooks: { timeoutSeconds: 30 } }),
      },
      { name: 'hung.js', data: HUNG_APP },
    ]);
    const created = await fetch(`${server.url}/v1/images?name=hung`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/zip' },
      body: new Uint8Array(zip),
    });
    if (!created.ok) throw new Error(`image create: ${await created.text()}`);
    for (let state = ''; state !== 'SUCCESSFUL'; ) {
      state = String((await api(server, 'GET', '/v1/images/hung/versions/1')).state);
      if (state === 'FAILED') throw new Error('the hung-hooks image failed to build');
      await new Promise((r) => setTimeout(r, 500));
    }

    // the floor: one suspend through the API, nothing else going on
    const floor: number[] = [];
    for (let i = 0; i < 3; i++) {
      const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'base' });
      const t0 = performance.now();
      await api(server, 'POST', `/v1/microvms/${vm.id}/suspend`);
      floor.push(performance.now() - t0);
      await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
    }

    // launch-done times, client-side: each VM's idle deadline is 5 s after its launch answered
    const launchedAtMs = new Map<string, number>();
    const launch = async (imageName: string): Promise<string> => {
      const vm = await api(server, 'POST', '/v1/microvms', {
        imageName,
        idlePolicy: { maxIdleDurationSeconds: IDLE_SECONDS },
      });
      launchedAtMs.set(String(vm.id), Date.now());
      return String(vm.id);
    };
    const stuckId = await launch('hung');
    for (let next = 1; next < VMS; ) {
      const batch = Array.from({ length: Math.min(LAUNCH_CONCURRENCY, VMS - next) }, () => launch('base'));
      next += batch.length;
      await Promise.all(batch);
      console.log(`  sweeper: ${next}/${VMS} VMs running`);
    }
    // watched through the list (a GET of one VM would count as its activity)
    const suspendedAt = new Map<string, number>();
    for (let i = 0; i < 2400 && suspendedAt.size < VMS; i++) {
      const page = await api(server, 'GET', '/v1/microvms?state=SUSPENDED&limit=100');
      for (const vm of page.microvms as Array<{ id: string; suspendedAt: string }>)
        suspendedAt.set(vm.id, Date.parse(vm.suspendedAt));
      await new Promise((r) => setTimeout(r, 250));
    }
    if (suspendedAt.size < VMS) throw new Error(`only ${suspendedAt.size} of ${VMS} VMs suspended`);
    const lateMs = [...launchedAtMs]
      .filter(([id]) => id !== stuckId)
      .map(([id, at]) => suspendedAt.get(id)! - (at + IDLE_SECONDS * 1000));
    const deadlines = [...launchedAtMs.values()].map((at) => at + IDLE_SECONDS * 1000);
    const spanMs = Math.max(...suspendedAt.values()) - Math.min(...deadlines);
    const stuckLateMs = suspendedAt.get(stuckId)! - (launchedAtMs.get(stuckId)! + IDLE_SECONDS * 1000);
    const late = summarize(lateMs);
    const floorSummary = summarize(floor);
    return {
      note:
        `${VMS} VMs idle after ${IDLE_SECONDS} s (base, 512 MiB; launched ${LAUNCH_CONCURRENCY} at a ` +
        `time, so their deadlines are spread), one of them an app whose suspend hook never answers (30 s ` +
        `deadline); late = suspend done − idle deadline; floor = one API suspend alone`,
      lateAfterIdleDeadlineMs: late,
      singleSuspendFloorMs: floorSummary,
      lateToFloor: ratio(late, floorSummary),
      spanFirstDeadlineToLastSuspendMs: spanMs,
      stuckVmLateMs: stuckLateMs,
    };
  } finally {
    await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

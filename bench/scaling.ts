// The scaling curve: launch latency (POST → first exec answered) and host memory per VM (PSS) with 1, 10,
// 50 and 100 idle 512 MiB python VMs already running; the goal is launch p50 at 100 within 1.5x of at 1.
// Writes an SVG chart beside the run's JSON in bench/results/. BENCH_SCALING_LEVELS=1,10 runs fewer levels.
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { api } from './http.js';
import { pssKib, qemuPidOf } from './lifecycle.js';
import { type Summary, summarize } from './stats.js';

const LEVELS = (process.env.BENCH_SCALING_LEVELS ?? '1,10,50,100').split(',').map(Number);
const LAUNCHES_PER_LEVEL = 5;
const SETTLE_MS = 5000;

interface ScalingPoint {
  idleVms: number;
  launchMs: Summary;
  pssMibPerVm: Summary;
}

async function launchAndExec(server: Awaited<ReturnType<typeof startServer>>): Promise<[string, number]> {
  const t0 = performance.now();
  const vm = await api(server, 'POST', '/v1/microvms', { imageName: 'python' });
  await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
  return [String(vm.id), performance.now() - t0];
}

export async function benchScaling(work: string, resultsDir: string, at: string): Promise<Record<string, unknown>> {
  const most = Math.max(...LEVELS) + LAUNCHES_PER_LEVEL;
  const server = await startServer(
    {
      dataDir: path.join(work, 'data'),
      port: 0,
      warmPoolSize: 0, // every launch restores: the curve is the restore path's
      defaultQuotas: {
        maxRunningMicroVMs: most,
        maxVcpus: most,
        maxMemoryMib: most * 512,
        maxStorageMib: 1024 * 1024,
      },
    },
    createLogger(process.stderr, true),
  );
  const fleet: string[] = [];
  const points: ScalingPoint[] = [];
  try {
    await server.snapshotsBuilt;
    for (const level of LEVELS) {
      // idle VMs already running: the fleet grows to the level, then settles
      while (fleet.length < level) fleet.push((await launchAndExec(server))[0]);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const pss = fleet.map((id) => pssKib(qemuPidOf(id)) / 1024);
      const launches: number[] = [];
      for (let i = 0; i < LAUNCHES_PER_LEVEL; i++) {
        const [id, ms] = await launchAndExec(server);
        launches.push(ms);
        await api(server, 'DELETE', `/v1/microvms/${id}`);
      }
      const point = { idleVms: level, launchMs: summarize(launches), pssMibPerVm: summarize(pss) };
      points.push(point);
      console.log(
        `  ${level} idle VMs: launch p50 ${point.launchMs.p50.toFixed(0)} ms, ` +
          `PSS p50 ${point.pssMibPerVm.p50.toFixed(1)} MiB per VM`,
      );
    }
  } finally {
    for (const id of fleet) await api(server, 'DELETE', `/v1/microvms/${id}`).catch(() => undefined);
    await server.close();
  }
  const first = points[0];
  const last = points[points.length - 1];
  const chart = path.join(resultsDir, `scaling-${at}.svg`);
  fs.writeFileSync(chart, scalingChart(points));
  return {
    points,
    launchP50RatioAtMostToOne: Math.round((last.launchMs.p50 / first.launchMs.p50) * 100) / 100,
    chart: path.basename(chart),
  };
}

/** Launch p50/p95 and PSS per VM against idle VMs, as a small self-contained SVG (two panels). */
function scalingChart(points: ScalingPoint[]): string {
  const width = 720;
  const height = 300;
  const panel = (x0: number, title: string, unit: string, series: Array<[string, string, number[]]>): string => {
    const plotW = 300;
    const plotH = 200;
    const top = 50;
    const maxY = Math.max(...series.flatMap(([, , ys]) => ys)) * 1.15 || 1;
    const maxX = Math.max(...points.map((p) => p.idleVms));
    const px = (n: number): number => x0 + 50 + (n / maxX) * plotW;
    const py = (v: number): number => top + plotH - (v / maxY) * plotH;
    const lines = series.map(([name, color, ys], k) => {
      const d = ys.map((y, i) => `${i ? 'L' : 'M'}${px(points[i].idleVms).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      const dots = ys
        .map(
          (y, i) => `<circle cx="${px(points[i].idleVms).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`,
        )
        .join('');
      const legend = `<text x="${x0 + 60}" y="${top + 14 + k * 14}" fill="${color}" font-size="11">${name}</text>`;
      return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>${dots}${legend}`;
    });
    const xTicks = points
      .map(
        (p) =>
          `<text x="${px(p.idleVms)}" y="${top + plotH + 16}" font-size="10" text-anchor="middle">${p.idleVms}</text>`,
      )
      .join('');
    const yTicks = [0, 0.5, 1]
      .map((f) => {
        const v = (maxY / 1.15) * f;
        return `<text x="${x0 + 44}" y="${py(v) + 3}" font-size="10" text-anchor="end">${Math.round(v)}</text>`;
      })
      .join('');
    return (
      `<text x="${x0 + 50}" y="30" font-size="13" font-weight="bold">${title}</text>` +
      `<line x1="${x0 + 50}" y1="${top + plotH}" x2="${x0 + 50 + plotW}" y2="${top + plotH}" stroke="#888"/>` +
      `<line x1="${x0 + 50}" y1="${top}" x2="${x0 + 50}" y2="${top + plotH}" stroke="#888"/>` +
      `<text x="${x0 + 50 + plotW / 2}" y="${top + plotH + 32}" font-size="11" text-anchor="middle">` +
      'idle VMs running</text>' +
      `<text x="${x0 + 10}" y="${top - 8}" font-size="11">${unit}</text>` +
      xTicks +
      yTicks +
      lines.join('')
    );
  };
  const launch = panel(0, 'Launch (POST → first exec)', 'ms', [
    ['p50', '#1f77b4', points.map((p) => p.launchMs.p50)],
    ['p95', '#ff7f0e', points.map((p) => p.launchMs.p95)],
  ]);
  const memory = panel(width / 2, 'Host memory per idle VM (PSS)', 'MiB', [
    ['p50', '#2ca02c', points.map((p) => p.pssMibPerVm.p50)],
  ]);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>${launch}${memory}</svg>\n`
  );
}

// Launch from the warm pool: POST /v1/microvms → first exec answered, when a paused clone of the runtime is
// ready (each launch waits for the pool to refill first, so the refill's restore never overlaps what is
// measured). Its floor is the raw restore the lifecycle bench measures in the same run.
import path from 'node:path';
import { type RunningServer, startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { api } from './http.js';
import { summarize, type Summary } from './stats.js';
import { poolClones } from '../tests/support/pool-metrics.js';
import { until } from '../tests/support/until.js';

function poolFull(server: RunningServer, runtime: string, size: number): Promise<boolean> {
  const full = async (): Promise<boolean> => (await poolClones(server.url, server.adminKey, runtime)) >= size;
  return until(`the warm pool of ${runtime} to fill`, full, 120_000);
}

export async function benchPoolLaunch(work: string, runtime: string, runs: number): Promise<Summary> {
  const size = 1;
  const server = await startServer(
    { dataDir: path.join(work, 'pool-data'), port: 0, warmPoolSize: size },
    createLogger(process.stderr, process.env.BENCH_LOG !== '1'),
  );
  try {
    await server.snapshotsBuilt;
    const launch: number[] = [];
    for (let i = 0; i < runs; i++) {
      await poolFull(server, runtime, size);
      const t0 = performance.now();
      const vm = await api(server, 'POST', '/v1/microvms', { imageName: runtime });
      await api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
      launch.push(performance.now() - t0);
      if (vm.launchedFrom !== 'pool') throw new Error(`launch ${i} was not from the pool: ${vm.launchedFrom}`);
      await api(server, 'DELETE', `/v1/microvms/${vm.id}`);
      console.log(`  pool launch ${i + 1}/${runs}: ${launch[i].toFixed(0)} ms`);
    }
    return summarize(launch);
  } finally {
    await server.close();
  }
}

// Many hosts: a request for a MicroVM through another host's server (forwarded to its host, api/forward.ts)
// against the same request sent to its host directly; a launch placed through another server against one sent
// to its host as placed already. Two hosts on a throwaway Postgres, one VM on h1; the
// calls alternate so both see the same machine. Goal (issue 16): at most 5 ms added per hop at p50.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { startThrowawayPostgres } from '../tests/support/throwaway-postgres.js';
import { api } from './http.js';
import { type Summary, summarize } from './stats.js';

const ROUNDS = 100;
const WARM_UP = 10;

type Server = Awaited<ReturnType<typeof startServer>>;

async function timed(call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await call();
  return performance.now() - t0;
}

/** `call` on the VM's host and through the other host, alternating; their p50/p95 and what the hop adds. */
async function compare(
  direct: () => Promise<unknown>,
  forwarded: () => Promise<unknown>,
  rounds = ROUNDS,
  warmUp = WARM_UP,
): Promise<{ direct: Summary; forwarded: Summary; addedP50Ms: number }> {
  for (let i = 0; i < warmUp; i++) await Promise.all([direct(), forwarded()]);
  const samples = { direct: [] as number[], forwarded: [] as number[] };
  // the order alternates too: what one call leaves going on (a terminated VM's cleanup) falls on both alike
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) samples.direct.push(await timed(direct));
    samples.forwarded.push(await timed(forwarded));
    if (i % 2 === 1) samples.direct.push(await timed(direct));
  }
  const [d, f] = [summarize(samples.direct), summarize(samples.forwarded)];
  return { direct: d, forwarded: f, addedP50Ms: Math.round((f.p50 - d.p50) * 100) / 100 };
}

export async function benchHosts(work: string): Promise<Record<string, unknown>> {
  const postgres = await startThrowawayPostgres();
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const servers: Server[] = [];
  try {
    const databaseUrl = await postgres.createDatabase('capsule_bench_hosts');
    for (const hostId of ['h1', 'h2']) {
      const dataDir = path.join(work, hostId);
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
      fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
      const server = await startServer(
        { dataDir, port: 0, warmPoolSize: 0, databaseUrl, hostId, clusterKey },
        createLogger(process.stderr, true),
      );
      servers.push(server);
      await server.snapshotsBuilt;
    }
    const [h1, h2] = servers;
    const vm = await api(h1, 'POST', '/v1/microvms', { imageName: 'base' });
    const exec = (server: Server) => () => api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
    const history = (server: Server) => () => api(server, 'GET', `/v1/microvms/${vm.id}/history`);
    // a launch placed on h1 (the hosts tie: by id) through h2, against one sent to h1 as placed already (no
    // placement, no hop): each terminated before the next
    const launch = (server: Server, headers: Record<string, string>) => async () => {
      const response = await fetch(`${server.url}/v1/microvms`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ imageName: 'base' }),
      });
      const launched = (await response.json()) as { id: string; hostId: string };
      if (!response.ok || launched.hostId !== 'h1') throw new Error(`launch: ${response.status} on ${launched.hostId}`);
      await api(h1, 'DELETE', `/v1/microvms/${launched.id}`);
    };
    const execTrueMs = await compare(exec(h1), exec(h2));
    const historyGetMs = await compare(history(h1), history(h2));
    await api(h1, 'DELETE', `/v1/microvms/${vm.id}`); // the hosts tie again
    const result = {
      execTrueMs,
      historyGetMs,
      launchPlusTerminateMs: await compare(launch(h1, { 'x-capsule-forwarded-by': 'bench' }), launch(h2, {}), 10, 1),
    };
    console.log(
      `  forwarded to another host: exec true +${result.execTrueMs.addedP50Ms} ms, ` +
        `GET history +${result.historyGetMs.addedP50Ms} ms, ` +
        `launch +${result.launchPlusTerminateMs.addedP50Ms} ms (p50)`,
    );
    return result;
  } finally {
    for (const server of servers) await server.close();
    postgres.stop();
  }
}

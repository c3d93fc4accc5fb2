// Many hosts: a request for a MicroVM through another host's server, and through an api node (`--role api`, which
// runs no VM), forwarded to its host (api/forward.ts), against the same request sent to its host directly; a launch
// placed through another server against one sent to its host as placed already; a resume through the api node
// against one on the host. Two hosts and an api node on a throwaway Postgres and one S3 server, one VM on h1; the
// calls alternate so both see the same machine. Goal (issue 16): at most 5 ms added per hop at p50.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger } from '@capsule/server/internals';
import { startS3 } from '../tests/support/s3-server.js';
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

/**
 * `call` on the VM's host and through another server, alternating; their p50/p95 and what the hop adds. Each function
 * resolves with the milliseconds it measured (`timed`: all of it).
 */
async function compare(
  direct: () => Promise<number>,
  forwarded: () => Promise<number>,
  rounds = ROUNDS,
  warmUp = WARM_UP,
): Promise<{ direct: Summary; forwarded: Summary; addedP50Ms: number }> {
  for (let i = 0; i < warmUp; i++) await direct().then(forwarded);
  const samples = { direct: [] as number[], forwarded: [] as number[] };
  // the order alternates too: what one call leaves going on (a terminated VM's cleanup) falls on both alike
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) samples.direct.push(await direct());
    samples.forwarded.push(await forwarded());
    if (i % 2 === 1) samples.direct.push(await direct());
  }
  const [d, f] = [summarize(samples.direct), summarize(samples.forwarded)];
  return { direct: d, forwarded: f, addedP50Ms: Math.round((f.p50 - d.p50) * 100) / 100 };
}

export async function benchHosts(work: string): Promise<Record<string, unknown>> {
  const postgres = await startThrowawayPostgres();
  const s3 = await startS3(['capsule-bench-hosts']);
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const servers: Server[] = [];
  try {
    const databaseUrl = await postgres.createDatabase('capsule_bench_hosts');
    for (const [hostId, role] of [
      ['h1', 'all'],
      ['h2', 'all'],
      ['a1', 'api'],
    ] as const) {
      const dataDir = path.join(work, hostId);
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
      fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
      const server = await startServer(
        {
          dataDir,
          port: 0,
          warmPoolSize: 0,
          databaseUrl,
          hostId,
          clusterKey,
          role,
          blobs: 's3://capsule-bench-hosts',
          s3: s3.config,
        },
        createLogger(process.stderr, true),
      );
      servers.push(server);
      await server.snapshotsBuilt;
    }
    const [h1, h2, a1] = servers;
    const vm = await api(h1, 'POST', '/v1/microvms', { imageName: 'base' });
    const exec = (server: Server) => () =>
      timed(() => api(server, 'POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] }));
    const history = (server: Server) => () => timed(() => api(server, 'GET', `/v1/microvms/${vm.id}/history`));
    // suspended on h1 (not timed), then resumed through `server`
    const resume = (server: Server) => async () => {
      await api(h1, 'POST', `/v1/microvms/${vm.id}/suspend`);
      return timed(() => api(server, 'POST', `/v1/microvms/${vm.id}/resume`));
    };
    // a launch placed on h1 (the hosts tie: by id) through h2, against one sent to h1 as placed already (no
    // placement, no hop): each terminated before the next
    const launch = (server: Server, headers: Record<string, string>) => () => timed(() => launchOnH1(server, headers));
    const launchOnH1 = async (server: Server, headers: Record<string, string>) => {
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
    const viaApiNode = {
      execTrueMs: await compare(exec(h1), exec(a1)),
      resumeMs: await compare(resume(h1), resume(a1), 8, 1),
    };
    await api(h1, 'DELETE', `/v1/microvms/${vm.id}`); // the hosts tie again
    const direct = launch(h1, { 'x-capsule-forwarded-by': 'bench' });
    const result = {
      execTrueMs,
      historyGetMs,
      launchPlusTerminateMs: await compare(direct, launch(h2, {}), 10, 1),
      viaApiNode: { ...viaApiNode, launchPlusTerminateMs: await compare(direct, launch(a1, {}), 10, 1) },
    };
    console.log(
      `  forwarded to another host: exec true +${result.execTrueMs.addedP50Ms} ms, ` +
        `GET history +${result.historyGetMs.addedP50Ms} ms, ` +
        `launch +${result.launchPlusTerminateMs.addedP50Ms} ms (p50)`,
    );
    console.log(
      `  through an api node: exec true +${viaApiNode.execTrueMs.addedP50Ms} ms, resume ` +
        `+${viaApiNode.resumeMs.addedP50Ms} ms, launch +${result.viaApiNode.launchPlusTerminateMs.addedP50Ms} ms (p50)`,
    );
    return result;
  } finally {
    for (const server of [...servers].reverse()) await server.close();
    postgres.stop();
    await s3.close();
  }
}

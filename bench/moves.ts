// Suspended VMs moving between hosts (issue 16): two hosts on a throwaway Postgres and one S3 server (s3rver).
//   resume: a VM (32 MiB dirtied) resumed where it was suspended, against resumed on the other host (its state
//     fetched from S3 and taken over), against the floor of the move: the same resume in place plus a raw GET of
//     the same objects from the same S3. Rounds alternate; the base snapshot is fetched once before timing.
//   drain: 10 running VMs on h1, `drain h1` until all run on h2 (suspend, publish, resume elsewhere, one at a time).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { type RunningServer, startServer } from '@capsule/server';
import { createLogger, s3Client } from '@capsule/server/internals';
import { startS3, type TestS3 } from '../tests/support/s3-server.js';
import { startThrowawayPostgres } from '../tests/support/throwaway-postgres.js';
import { api } from './http.js';
import { summarize } from './stats.js';

const ROUNDS = 8;
const DRAIN_VMS = 10;
const BUCKET = 'capsule-bench';

async function timed(call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await call();
  return performance.now() - t0;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The VM's published objects read from S3 into a file, as a fetch does: milliseconds. */
async function downloadMs(s3: TestS3, id: string, dir: string): Promise<number> {
  const client = s3Client(s3.config);
  const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `suspended/${id}/` }));
  const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith('manifest.json'));
  if (keys.length !== 2)
    throw new Error(`expected a state and a disk under suspended/${id}/, found ${keys.join(', ')}`);
  return timed(async () => {
    for (const key of keys) {
      const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      await pipeline(object.Body as NodeJS.ReadableStream, fs.createWriteStream(path.join(dir, 'download')));
    }
  });
}

/** Bytes in the bucket under `prefix`, and the largest object's. */
async function bytesUnder(s3: TestS3, prefix: string): Promise<{ bytes: number; largestBytes: number }> {
  const listed = await s3Client(s3.config).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  const sizes = (listed.Contents ?? []).map((o) => o.Size ?? 0);
  return { bytes: sizes.reduce((a, b) => a + b, 0), largestBytes: Math.max(0, ...sizes) };
}

export async function benchMoves(work: string): Promise<Record<string, unknown>> {
  const postgres = await startThrowawayPostgres();
  const s3 = await startS3([BUCKET]);
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const clusterKey = randomBytes(32).toString('base64url');
  const servers = new Map<string, RunningServer>();
  try {
    const databaseUrl = await postgres.createDatabase('capsule_bench_moves');
    for (const hostId of ['h1', 'h2']) {
      const dataDir = path.join(work, hostId);
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
      fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
      const config = { dataDir, port: 0, warmPoolSize: 0, databaseUrl, hostId, clusterKey, hostLeaseMs: 3000 };
      const server = await startServer(
        { ...config, blobs: `s3://${BUCKET}`, s3: s3.config },
        createLogger(process.stderr, true),
      );
      servers.set(hostId, server);
      await server.snapshotsBuilt;
    }
    const host = (id: string) => servers.get(id)!;
    const record = (id: string) => api(host('h1'), 'GET', `/v1/microvms/${id}`);
    const published = (id: string) =>
      until('its state published', async () => (await record(id)).suspendedStateLocation === 'shared');
    const onHost = async (id: string, hostId: string) => (await record(id)).hostId === hostId;

    // resume in place vs on the other host, alternating which host holds it
    const vm = await api(host('h1'), 'POST', '/v1/microvms', { imageName: 'base' });
    const id = vm.id as string;
    await api(host('h1'), 'POST', `/v1/microvms/${id}/exec`, {
      command: ['sh', '-c', 'head -c 32M /dev/urandom > /dev/shm/dirty'],
    });
    const samples = { inPlace: [] as number[], moved: [] as number[], download: [] as number[] };
    let owner = 'h1';
    let shared: Record<string, unknown> = {};
    let firstMoveMs = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      const other = owner === 'h1' ? 'h2' : 'h1';
      await api(host(owner), 'POST', `/v1/microvms/${id}/suspend`);
      await published(id);
      // what one suspend puts in the shared store: its own state and disk, and the snapshot base under it
      if (round === 0)
        shared = { state: await bytesUnder(s3, `suspended/${id}/`), base: await bytesUnder(s3, 'bases/') };
      const inPlace = await timed(() => api(host(owner), 'POST', `/v1/microvms/${id}/resume`));
      await api(host(owner), 'POST', `/v1/microvms/${id}/suspend`);
      await published(id);
      const download = await downloadMs(s3, id, work);
      await api(host(owner), 'POST', `/v1/hosts/${owner}/drain`); // it then serves none: the VM may move
      const moved = await timed(() => api(host(other), 'POST', `/v1/microvms/${id}/resume`));
      if (!(await onHost(id, other))) throw new Error(`the resume on ${other} left the VM elsewhere`);
      await api(host(owner), 'POST', `/v1/hosts/${owner}/undrain`);
      if (round === 0) firstMoveMs = moved; // the base not yet in the other host's cache: downloaded first
      if (round > 0) {
        samples.inPlace.push(inPlace);
        samples.moved.push(moved);
        samples.download.push(download);
      }
      owner = other;
    }
    await api(host(owner), 'DELETE', `/v1/microvms/${id}`);
    const [inPlace, moved, download] = [
      summarize(samples.inPlace),
      summarize(samples.moved),
      summarize(samples.download),
    ];
    const ratio = Math.round((moved.p50 / (inPlace.p50 + download.p50)) * 100) / 100;

    console.log(
      `  resume in place ${inPlace.p50.toFixed(0)} ms, on another host ${moved.p50.toFixed(0)} ms ` +
        `(download ${download.p50.toFixed(0)} ms; ${ratio}× in place + download)`,
    );

    // drain 10 running VMs off h1 (launched there while h2 drains, so placement picks h1)
    await api(host('h2'), 'POST', '/v1/hosts/h2/drain');
    const vms: string[] = [];
    for (let i = 0; i < DRAIN_VMS; i++) {
      const launched = await api(host('h1'), 'POST', '/v1/microvms', { imageName: 'base' });
      if (launched.hostId !== 'h1') throw new Error(`VM ${i} was placed on ${launched.hostId}`);
      vms.push(launched.id as string);
    }
    await api(host('h2'), 'POST', '/v1/hosts/h2/undrain');
    const drainMs = await timed(async () => {
      await api(host('h1'), 'POST', '/v1/hosts/h1/drain');
      for (const vmId of vms)
        await until(`${vmId} on h2`, async () => {
          const r = await record(vmId);
          return r.hostId === 'h2' && r.state === 'RUNNING';
        });
    });
    for (const vmId of vms) await api(host('h2'), 'DELETE', `/v1/microvms/${vmId}`);
    console.log(`  drain of ${DRAIN_VMS} VMs: ${(drainMs / 1000).toFixed(1)} s`);
    return {
      resumeInPlaceMs: inPlace,
      resumeOnAnotherHostMs: moved,
      downloadMs: download,
      movedVsInPlacePlusDownload: ratio,
      sharedStoreBytes: shared,
      firstMoveWithBaseDownloadMs: Math.round(firstMoveMs),
      drain: { vms: DRAIN_VMS, ms: Math.round(drainMs), perVmMs: Math.round(drainMs / DRAIN_VMS) },
    };
  } finally {
    for (const server of servers.values()) await server.close();
    await s3.close();
    postgres.stop();
  }
}

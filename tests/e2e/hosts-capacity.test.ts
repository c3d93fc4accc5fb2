// Placement under load, with real servers and VMs: two hosts on one Postgres, each admitting two 512 MiB VMs
// (CAPSULE_HOST_MAX_MEMORY_MIB=1024). 50 launches at once through both servers never overfill a host: four run,
// the rest are refused for room (503 HOST_FULL). A tenant's quota holds across the servers racing: with room for
// four, a tenant allowed three runs three (429 QUOTA_EXCEEDED for the rest).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '@capsule/server';
import { createLogger, loadConfig } from '@capsule/server/internals';
import { Capsule } from '@capsule/sdk';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { assertNoLeaks, qemuProcesses, removeNetworkNamespaces } from './helpers.js';

type Server = Awaited<ReturnType<typeof startServer>>;

describe('placement and quotas across two small hosts', () => {
  let postgres: ThrowawayPostgres;
  const adminKey = `cap_${randomBytes(32).toString('base64url')}`;
  const servers: Server[] = [];
  const dataDirs: string[] = [];
  /** Every VM a test launched, with the key that can terminate it (for the cleanup after a failed test too). */
  const launched = new Map<string, string>();

  before(async () => {
    postgres = await startThrowawayPostgres();
    const databaseUrl = await postgres.createDatabase('capsule_capacity');
    for (const hostId of ['h1', 'h2']) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `capsule-e2e-${hostId}-`));
      fs.chmodSync(dataDir, 0o755);
      dataDirs.push(dataDir);
      fs.writeFileSync(path.join(dataDir, 'admin-key'), `${adminKey}\n`, { mode: 0o600 });
      // 50 launches at once are past the tenant's launch burst: raised, so only room and quotas refuse
      const { apiLimits } = loadConfig({}, { CAPSULE_LAUNCH_BURST: '200', CAPSULE_LAUNCHES_PER_SECOND: '200' });
      const server = await startServer(
        { dataDir, port: 0, warmPoolSize: 0, databaseUrl, hostId, hostMaxMemoryMib: 1024, apiLimits },
        createLogger(process.stderr, true),
      );
      servers.push(server);
      await server.snapshotsBuilt;
    }
  });
  after(async () => {
    if (servers.length > 0) await terminateAll([...launched.keys()]).catch(() => undefined);
    for (const server of servers) await server.close();
    for (const dir of dataDirs) {
      for (const pid of qemuProcesses(dir)) process.kill(pid, 'SIGKILL');
      removeNetworkNamespaces(dir);
      assertNoLeaks(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    postgres?.stop();
  });

  /** `n` launches at once, alternating servers: each one's status and error code. */
  async function launchAtOnce(
    n: number,
    apiKey: string,
  ): Promise<Array<{ status: number; code: string; id?: string }>> {
    return Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const response = await fetch(`${servers[i % 2].url}/v1/microvms`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ imageName: 'base' }),
        });
        const body = (await response.json()) as { id?: string; error?: { code: string } };
        if (body.id) launched.set(body.id, apiKey);
        return { status: response.status, code: body.error?.code ?? '', id: body.id };
      }),
    );
  }

  async function terminateAll(ids: string[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const capsule = new Capsule({ baseUrl: servers[0].url, apiKey: launched.get(id)! });
        await (await capsule.microvms.get(id)).terminate();
        launched.delete(id);
      }),
    );
  }

  test('50 launches at once through both servers never overfill a host', async () => {
    const results = await launchAtOnce(50, adminKey);
    const ran = results.filter((r) => r.status === 201 || r.status === 200);
    assert.equal(ran.length, 4, JSON.stringify(results.filter((r) => r.status >= 500 && r.code !== 'HOST_FULL')));
    assert.deepEqual([...new Set(results.filter((r) => !r.id).map((r) => `${r.status} ${r.code}`))], ['503 HOST_FULL']);
    const hosts = await new Capsule({ baseUrl: servers[1].url, apiKey: adminKey }).hosts.list();
    assert.deepEqual(
      hosts.map((h) => [h.id, h.used.microvms, h.used.memoryMib]),
      [
        ['h1', 2, 1024],
        ['h2', 2, 1024],
      ],
    );
    await terminateAll(ran.map((r) => r.id!));
  });

  test("a tenant's quota holds across both servers racing", async () => {
    const admin = new Capsule({ baseUrl: servers[0].url, apiKey: adminKey });
    const tenant = await admin.tenants.create({ name: 'racer', quotas: { maxRunningMicroVMs: 3 } });
    const { key } = await admin.tenants.createApiKey(tenant.id);
    const results = await launchAtOnce(10, key);
    const ran = results.filter((r) => r.id);
    assert.equal(ran.length, 3, JSON.stringify(results));
    for (const r of results.filter((x) => !x.id)) assert.deepEqual([r.status, r.code], [429, 'QUOTA_EXCEEDED']);
    await terminateAll(ran.map((r) => r.id!));
  });
});

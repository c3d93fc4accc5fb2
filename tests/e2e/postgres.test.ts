// The server on Postgres (DATABASE_URL): the same lifecycle as on SQLite, with its state in Postgres.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorOf, qemuProcesses, startTestServer, type TestServer } from './helpers.js';

describe('server on Postgres', () => {
  let cluster: ThrowawayPostgres;
  let url: string;
  let server: TestServer;
  before(async () => {
    cluster = await startThrowawayPostgres();
    url = await cluster.createDatabase('capsule_e2e');
    server = await startTestServer({ databaseUrl: url });
  });
  after(async () => {
    await server?.close();
    cluster?.stop();
  });

  test('run, exec, suspend, resume, list by metadata, terminate — with every record in Postgres', async () => {
    const vm = await server.capsule.microvms.run({ imageName: 'base', metadata: { db: 'postgres' } });
    assert.equal((await vm.exec('echo on-pg')).stdout, 'on-pg\n');
    await vm.suspend();
    assert.equal((await vm.resume()).state, 'RUNNING');
    assert.deepEqual(
      (await server.capsule.microvms.list({ metadata: { db: 'postgres' } })).microvms.map((m) => m.id),
      [vm.id],
    );
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT state, metadata_json FROM microvms WHERE id = $1', [vm.id]);
      assert.deepEqual(rows, [{ state: 'RUNNING', metadata_json: '{"db":"postgres"}' }]);
      await vm.terminate();
      const after = await client.query('SELECT state FROM microvms WHERE id = $1', [vm.id]);
      assert.equal(after.rows[0].state, 'TERMINATED');
      const tenants = await client.query('SELECT id FROM tenants');
      assert.deepEqual(tenants.rows, [{ id: 'default' }]);
    } finally {
      await client.end();
    }
  });

  test(
    'Postgres stopped under a running server: 503 STORE_UNAVAILABLE, a VM dying meanwhile is recorded once ' +
      'it is back; no restart',
    async () => {
      const vm = await server.capsule.microvms.run({ imageName: 'base' });
      const [pid] = qemuProcesses(`/vms/${vm.id}/`);
      cluster.pause();
      try {
        const during = await server.api('GET', '/v1/microvms');
        assert.equal(during.status, 503);
        assert.equal((await errorOf(during)).code, 'STORE_UNAVAILABLE');
        process.kill(pid, 'SIGKILL'); // its loss cannot be written now: the server must neither exit nor forget it
        await sleep(3000);
        assert.equal((await server.api('GET', '/healthz')).status, 200, 'the server is still up');
      } finally {
        cluster.resume();
      }
      let state = '';
      for (let i = 0; i < 100 && state !== 'FAILED'; i++) {
        await sleep(200);
        const r = await server.api('GET', `/v1/microvms/${vm.id}`);
        if (r.status === 200) state = ((await r.json()) as { state: string }).state;
      }
      assert.equal(state, 'FAILED', 'the lost VM is recorded once the database is back');
      const again = await server.capsule.microvms.run({ imageName: 'base' });
      assert.equal((await again.exec('echo back')).stdout, 'back\n');
      await again.terminate();
    },
  );
});

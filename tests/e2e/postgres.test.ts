// The server on Postgres (DATABASE_URL): the same lifecycle as on SQLite, with its state in Postgres.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../packages/server/src/store/throwaway-postgres.js';
import { startTestServer, type TestServer } from './helpers.js';

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
    assert.deepEqual((await server.capsule.microvms.list({ metadata: { db: 'postgres' } })).microvms.map((m) => m.id), [vm.id]);
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
});

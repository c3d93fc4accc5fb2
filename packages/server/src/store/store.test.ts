// The store contract, run against SQLite and against a throwaway Postgres cluster: same schema, same
// queries, same results.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';
import type { SqlStore } from './sql-store.js';
import {
  STORE_BACKENDS as BACKENDS,
  openTestStore,
  samplePlan,
  sampleRecord as record,
  type After,
} from '../../../../tests/support/store-backends.js';
import type { MicroVMPatch, MicroVMRecord } from './types.js';

const key = (hash: string, tenantId: string, isAdmin: boolean) => ({
  id: `id-${hash}`,
  keyHash: hash,
  tenantId,
  isAdmin,
  name: null,
  createdAt: '2024-01-01T00:00:00.000Z',
});
const ids = (records: MicroVMRecord[]) => records.map((r) => r.id);

for (const backend of BACKENDS) {
  describe(`store on ${backend.name}`, () => {
    const openStore = (t: After): Promise<SqlStore> => openTestStore(backend, t);

    test('insert then get returns an equal record (JSON columns round trip)', async (t) => {
      const store = await openStore(t);
      const r = record('mvm-1');
      await store.insertMicroVM(r);
      assert.deepEqual(await store.getMicroVM('mvm-1'), r);
      assert.equal(await store.getMicroVM('mvm-missing'), null);

      const nulls = record('mvm-2', {
        imageVersion: null,
        metadata: {},
        env: {},
        accelerator: null,
        launchedFrom: null,
        kernelRelease: null,
        qemuPid: null,
        vmDir: null,
      });
      await store.insertMicroVM(nulls);
      assert.deepEqual(await store.getMicroVM('mvm-2'), nulls);
    });

    test('inserting a duplicate id fails', async (t) => {
      const store = await openStore(t);
      await store.insertMicroVM(record('mvm-1'));
      await assert.rejects(
        store.insertMicroVM(record('mvm-1', { tenantId: 'tenant-b' })),
        /UNIQUE|PRIMARY KEY|unique constraint/,
      );
      assert.equal((await store.getMicroVM('mvm-1'))!.tenantId, 'tenant-a');
    });

    test('history: an entry per state, in order, with the timing given; a refused change adds none', async (t) => {
      const store = await openStore(t);
      await store.insertMicroVM(record('mvm-h'));
      await store.transition('mvm-h', 'PENDING', 'RUNNING', {}, { durationMs: 812.4 });
      await store.transition('mvm-h', 'RUNNING', 'SUSPENDING');
      await store.transition('mvm-h', 'SUSPENDING', 'SUSPENDED', {}, { durationMs: 94 });
      assert.equal(await store.transition('mvm-h', 'RUNNING', 'TERMINATING'), null);
      await store.transition('mvm-h', 'SUSPENDED', 'RUNNING', {}, { durationMs: 545 });
      const history = await store.history('mvm-h');
      assert.deepEqual(
        history.map((h) => [h.state, h.durationMs]),
        [
          ['PENDING', null],
          ['RUNNING', 812],
          ['SUSPENDING', null],
          ['SUSPENDED', 94],
          ['RUNNING', 545],
        ],
      );
      assert.equal(history[0].at, record('mvm-h').createdAt);
      assert.deepEqual(await store.history('mvm-none'), []);
    });

    test('transition: the one way a state changes, checked against the state table and compare-and-set', async (t) => {
      const store = await openStore(t);
      const original = record('mvm-1');
      await store.insertMicroVM(original);

      const before = Date.now();
      const updated = await store.transition('mvm-1', 'PENDING', 'RUNNING', {
        startedAt: '2024-01-01T00:00:05.000Z',
        metadata: { team: 'infra' },
        qemuPid: 99,
      });
      assert.ok(updated);
      assert.equal(updated.state, 'RUNNING');
      assert.equal(updated.startedAt, '2024-01-01T00:00:05.000Z');
      assert.deepEqual(updated.metadata, { team: 'infra' });
      assert.equal(updated.qemuPid, 99);
      // Untouched fields stay; updatedAt is refreshed.
      assert.deepEqual(updated.env, original.env);
      assert.equal(updated.createdAt, original.createdAt);
      assert.ok(Date.parse(updated.updatedAt) >= before - 1000, `updatedAt ${updated.updatedAt}`);
      assert.notEqual(updated.updatedAt, original.updatedAt);
      assert.deepEqual(await store.getMicroVM('mvm-1'), updated);

      // Not in the expected state: null and nothing changes.
      const stale = await store.transition('mvm-1', 'PENDING', 'FAILED', { failureReason: 'boom' });
      assert.equal(stale, null);
      assert.deepEqual(await store.getMicroVM('mvm-1'), updated);

      // Unknown id: null.
      assert.equal(await store.transition('mvm-missing', 'RUNNING', 'TERMINATING'), null);

      // Not in the table: a bug, thrown before anything is written (also when one of several is illegal).
      await assert.rejects(
        store.transition('mvm-1', 'RUNNING', 'PENDING'),
        /RUNNING → PENDING is not in the state table/,
      );
      await assert.rejects(
        store.transition('mvm-1', ['RUNNING', 'TERMINATED'], 'FAILED'),
        /TERMINATED → FAILED is not in the state table/,
      );
      await assert.rejects(store.transition('mvm-1', [], 'FAILED'), /not in the state table/);
      assert.deepEqual(await store.getMicroVM('mvm-1'), updated);

      // Any of several expected states.
      const failed = await store.transition('mvm-1', ['PENDING', 'RUNNING', 'SUSPENDED'], 'FAILED', {
        failureReason: 'host lost',
      });
      assert.equal(failed?.state, 'FAILED');
      assert.equal(failed?.failureReason, 'host lost');

      // updateMicroVM changes other fields, never the state; fields that are not columns are ignored.
      const labelled = await store.updateMicroVM('mvm-1', { qemuPid: null, bogus: 1 } as unknown as MicroVMPatch);
      assert.deepEqual([labelled?.state, labelled?.qemuPid], ['FAILED', null]);
      await assert.rejects(
        store.updateMicroVM('mvm-1', { state: 'RUNNING' } as unknown as MicroVMPatch),
        /only through transition/,
      );
      assert.equal(await store.updateMicroVM('mvm-missing', { qemuPid: 1 }), null);
    });

    test('transition does not touch other records', async (t) => {
      const store = await openStore(t);
      await store.insertMicroVM(record('mvm-1'));
      await store.insertMicroVM(record('mvm-2'));
      await store.transition('mvm-1', 'PENDING', 'RUNNING');
      assert.deepEqual(await store.getMicroVM('mvm-2'), record('mvm-2'));
    });

    async function seed(store: SqlStore): Promise<void> {
      const rows: Array<[string, Partial<MicroVMRecord>]> = [
        [
          'mvm-01',
          { state: 'RUNNING', imageName: 'python', metadata: { team: 'core', 'app.name': 'web', 'build-id': '1' } },
        ],
        ['mvm-02', { state: 'PENDING', imageName: 'node', metadata: { team: 'core', 'app.name': 'api' } }],
        ['mvm-03', { state: 'RUNNING', imageName: 'node', metadata: { team: 'data', 'build-id': '1' } }],
        ['mvm-04', { state: 'TERMINATED', imageName: 'python', metadata: {} }],
        [
          'mvm-05',
          { state: 'RUNNING', imageName: 'python', metadata: { team: 'core', 'app.name': 'web', 'build-id': '2' } },
        ],
        // Another tenant with overlapping ids, images, states and metadata.
        [
          'mvm-00',
          {
            tenantId: 'tenant-b',
            state: 'RUNNING',
            imageName: 'python',
            metadata: { team: 'core', 'app.name': 'web', 'build-id': '1' },
          },
        ],
        ['mvm-06', { tenantId: 'tenant-b', state: 'PENDING', imageName: 'node', metadata: { team: 'core' } }],
        ['mvm-99', { tenantId: 'tenant-b', state: 'SUSPENDED', imageName: 'python', metadata: { team: 'core' } }],
      ];
      // Insert out of id order so ORDER BY is what sorts.
      for (const [id, overrides] of [...rows].reverse()) await store.insertMicroVM(record(id, overrides));
    }

    test('listMicroVMs filters by tenant, state, image and metadata', async (t) => {
      const store = await openStore(t);
      await seed(store);
      const list = (filter: Partial<Parameters<SqlStore['listMicroVMs']>[0]>) =>
        store.listMicroVMs({ tenantId: 'tenant-a', limit: 100, ...filter });

      assert.deepEqual(ids(await list({})), ['mvm-01', 'mvm-02', 'mvm-03', 'mvm-04', 'mvm-05']);
      assert.deepEqual(ids(await list({ tenantId: 'tenant-b' })), ['mvm-00', 'mvm-06', 'mvm-99']);
      assert.deepEqual(ids(await list({ tenantId: 'tenant-none' })), []);
      for (const r of await list({})) assert.equal(r.tenantId, 'tenant-a');

      assert.deepEqual(ids(await list({ state: 'RUNNING' })), ['mvm-01', 'mvm-03', 'mvm-05']);
      assert.deepEqual(ids(await list({ state: 'SUSPENDED' })), [], "another tenant's SUSPENDED VM never appears");
      assert.deepEqual(ids(await list({ imageName: 'node' })), ['mvm-02', 'mvm-03']);
      assert.deepEqual(ids(await list({ imageName: 'python', state: 'RUNNING' })), ['mvm-01', 'mvm-05']);
      assert.deepEqual(ids(await list({ imageName: 'ruby' })), []);

      assert.deepEqual(ids(await list({ metadata: { team: 'core' } })), ['mvm-01', 'mvm-02', 'mvm-05']);
      assert.deepEqual(
        ids(await list({ metadata: { 'app.name': 'web' } })),
        ['mvm-01', 'mvm-05'],
        'a key with a dot is one key, not a path',
      );
      assert.deepEqual(ids(await list({ metadata: { 'build-id': '1' } })), ['mvm-01', 'mvm-03'], 'a key with a dash');
      assert.deepEqual(
        ids(await list({ metadata: { team: 'core', 'build-id': '2' } })),
        ['mvm-05'],
        'all pairs must match',
      );
      assert.deepEqual(
        ids(
          await list({
            metadata: { team: 'core', 'app.name': 'web', 'build-id': '1' },
            state: 'RUNNING',
            imageName: 'python',
          }),
        ),
        ['mvm-01'],
      );
      assert.deepEqual(ids(await list({ metadata: { team: 'nobody' } })), []);
      assert.deepEqual(ids(await list({ metadata: { missing: 'x' } })), []);
      assert.deepEqual(ids(await list({ metadata: {} })), ['mvm-01', 'mvm-02', 'mvm-03', 'mvm-04', 'mvm-05']);
      assert.deepEqual(ids(await list({ tenantId: 'tenant-b', metadata: { 'app.name': 'web' } })), ['mvm-00']);
    });

    test('a dotted metadata key does not match a nested object path', async (t) => {
      const store = await openStore(t);
      // Only reachable through the store (the API validates labels as strings), but the filter must
      // still treat the dotted key as one literal key.
      await store.insertMicroVM(
        record('mvm-1', { metadata: { app: { name: 'web' } } as unknown as Record<string, string> }),
      );
      await store.insertMicroVM(record('mvm-2', { metadata: { 'app.name': 'web' } }));
      assert.deepEqual(
        ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 10, metadata: { 'app.name': 'web' } })),
        ['mvm-2'],
      );
    });

    test('a metadata filter key containing a double quote matches nothing instead of throwing', async (t) => {
      const store = await openStore(t);
      await store.insertMicroVM(record('mvm-1', { metadata: { a: 'v' } }));
      for (const key of ['a"b', 'a"', 'a".x']) {
        assert.deepEqual(
          ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 10, metadata: { [key]: 'v' } })),
          [],
          key,
        );
      }
    });

    test('listMicroVMs pages with limit + after in id order', async (t) => {
      const store = await openStore(t);
      await seed(store);
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 2, after }));
        if (page.length === 0) break;
        pages.push(page);
        after = page[page.length - 1];
      }
      assert.deepEqual(pages, [['mvm-01', 'mvm-02'], ['mvm-03', 'mvm-04'], ['mvm-05']]);

      assert.deepEqual(ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 1 })), ['mvm-01']);
      assert.deepEqual(ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 10, after: 'mvm-03' })), [
        'mvm-04',
        'mvm-05',
      ]);
      // The cursor need not be an existing id; another tenant's id as cursor leaks nothing.
      assert.deepEqual(ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 10, after: 'mvm-00' })), [
        'mvm-01',
        'mvm-02',
        'mvm-03',
        'mvm-04',
        'mvm-05',
      ]);
      assert.deepEqual(ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 10, after: 'mvm-05' })), []);
      // Paging combines with filters.
      assert.deepEqual(
        ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 1, after: 'mvm-01', state: 'RUNNING' })),
        ['mvm-03'],
      );
      assert.deepEqual(
        ids(await store.listMicroVMs({ tenantId: 'tenant-a', limit: 5, after: 'mvm-01', metadata: { team: 'core' } })),
        ['mvm-02', 'mvm-05'],
      );
    });

    test('listMicroVMsInStates spans tenants', async (t) => {
      const store = await openStore(t);
      await seed(store);
      const sorted = async (states: Parameters<SqlStore['listMicroVMsInStates']>[0]) =>
        ids(await store.listMicroVMsInStates(states)).sort();
      assert.deepEqual(await sorted(['RUNNING']), ['mvm-00', 'mvm-01', 'mvm-03', 'mvm-05']);
      assert.deepEqual(await sorted(['PENDING', 'SUSPENDED']), ['mvm-02', 'mvm-06', 'mvm-99']);
      assert.deepEqual(await sorted(['FAILED']), []);
      assert.deepEqual(await sorted([]), []);
      const [full] = await store.listMicroVMsInStates(['TERMINATED']);
      assert.deepEqual(full, record('mvm-04', { state: 'TERMINATED', imageName: 'python', metadata: {} }));
    });

    test("listMicroVMsLeftHolding: a host's VMs that run nothing but still name a QEMU or namespace", async (t) => {
      const store = await openStore(t);
      const rows: Array<[string, Partial<MicroVMRecord>]> = [
        ['mvm-ended', { state: 'TERMINATED', netSlot: 3 }],
        ['mvm-failed', { state: 'FAILED', qemuPid: 4242 }],
        ['mvm-parked', { state: 'SUSPENDED', netSlot: 5 }],
        ['mvm-clean', { state: 'TERMINATED' }],
        ['mvm-live', { state: 'RUNNING', netSlot: 6, qemuPid: 4343 }],
        ['mvm-elsewhere', { state: 'FAILED', netSlot: 7, hostId: 'h2' }],
      ];
      for (const [id, fields] of rows)
        await store.insertMicroVM(record(id, { hostId: 'h1', qemuPid: null, netSlot: null, ...fields }));
      assert.deepEqual(ids(await store.listMicroVMsLeftHolding('h1')).sort(), [
        'mvm-ended',
        'mvm-failed',
        'mvm-parked',
      ]);
      assert.deepEqual(ids(await store.listMicroVMsLeftHolding('h3')), []);
    });

    test("recordMicroVMStorage: many VMs' bytes at once; a later measure, or another host's, replaces", async (t) => {
      const store = await openStore(t);
      const many = Array.from({ length: 450 }, (_, i) => ({ id: `mvm-${String(i).padStart(3, '0')}`, bytes: i }));
      await store.recordMicroVMStorage('h1', many);
      await store.recordMicroVMStorage('h2', [{ id: 'mvm-007', bytes: 7_000 }]);
      const read = await store.microVMStorage(['mvm-000', 'mvm-007', 'mvm-449', 'mvm-none']);
      assert.deepEqual([...read].sort(), [
        ['mvm-000', 0],
        ['mvm-007', 7_000],
        ['mvm-449', 449],
      ]);
      // rows of VMs that ended go
      await store.insertMicroVM(record('mvm-449', { state: 'TERMINATED' }));
      assert.equal(await store.dropEndedMicroVMStorage(), 1);
      assert.equal((await store.microVMStorage(['mvm-449'])).size, 0);
    });

    test('api keys: insert, find, insert twice is harmless', async (t) => {
      const store = await openStore(t);
      assert.equal(await store.findApiKey('hash-1'), null);
      await store.insertApiKey(key('hash-1', 'tenant-a', false));
      await store.insertApiKey(key('hash-2', 'admin', true));
      assert.deepEqual(await store.findApiKey('hash-1'), { id: 'id-hash-1', tenantId: 'tenant-a', isAdmin: false });
      assert.deepEqual(await store.findApiKey('hash-2'), { id: 'id-hash-2', tenantId: 'admin', isAdmin: true });
      // A second insert of the same hash neither throws nor changes the first.
      await store.insertApiKey({ ...key('hash-1', 'tenant-evil', true), id: 'other' });
      assert.deepEqual(await store.findApiKey('hash-1'), { id: 'id-hash-1', tenantId: 'tenant-a', isAdmin: false });
      assert.equal(await store.findApiKey('HASH-1'), null, 'lookup is exact');
    });

    test('AWS access keys: insert once, find, list per API key, revoked with their API key', async (t) => {
      const store = await openStore(t);
      await store.insertApiKey(key('hash-1', 'tenant-a', false));
      const pair = (accessKeyId: string, createdAt: string) => ({
        accessKeyId,
        keyId: 'id-hash-1',
        tenantId: 'tenant-a',
        secretSealed: `v1.sealed-${accessKeyId}`,
        createdAt,
      });
      assert.equal(await store.findAwsAccessKey('AKIA1'), null);
      await store.insertAwsAccessKey(pair('AKIA2', '2024-01-02T00:00:00.000Z'));
      await store.insertAwsAccessKey(pair('AKIA1', '2024-01-01T00:00:00.000Z'));
      await store.insertAwsAccessKey({ ...pair('AKIA1', '2024-01-03T00:00:00.000Z'), tenantId: 'tenant-evil' });
      assert.deepEqual(await store.findAwsAccessKey('AKIA1'), pair('AKIA1', '2024-01-01T00:00:00.000Z'));
      assert.equal(await store.findAwsAccessKey('akia1'), null, 'lookup is exact');
      assert.deepEqual(
        (await store.listAwsAccessKeys('id-hash-1')).map((k) => k.accessKeyId),
        ['AKIA1', 'AKIA2'],
      );
      assert.equal(await store.deleteApiKey('tenant-b', 'id-hash-1'), false, "another tenant's key stays");
      assert.ok(await store.findAwsAccessKey('AKIA1'));
      assert.equal(await store.deleteApiKey('tenant-a', 'id-hash-1'), true);
      assert.equal(await store.findAwsAccessKey('AKIA1'), null);
      assert.deepEqual(await store.listAwsAccessKeys('id-hash-1'), []);
    });

    test('client tokens: claimed once, held until settled, freed by a failure, taken over once expired', async (t) => {
      const store = await openStore(t);
      const key = { tenantId: 'tenant-a', operation: 'RunMicrovm', token: 'tok-1' };
      const claim = (hash: string, nowIso: string, expiresAt = '2024-01-01T08:00:00.000Z') =>
        store.claimIdempotencyToken({ ...key, requestHash: hash, resourceId: null, expiresAt }, nowIso);
      const t0 = '2024-01-01T00:00:00.000Z';
      assert.equal(await claim('h1', t0), null, 'taken');
      assert.deepEqual(await claim('h2', t0), {
        ...key,
        requestHash: 'h1',
        resourceId: null,
        expiresAt: '2024-01-01T08:00:00.000Z',
      });
      assert.equal(
        await store.claimIdempotencyToken(
          { ...key, tenantId: 'tenant-b', requestHash: 'h1', resourceId: null, expiresAt: t0 },
          t0,
        ),
        null,
        "another tenant's token of the same text is its own",
      );
      await store.settleIdempotencyToken(key, 'mvm-1');
      assert.equal((await claim('h1', t0))?.resourceId, 'mvm-1');
      assert.equal(await claim('h1', '2024-01-01T08:00:00.000Z'), null, 'expired: taken over');
      await store.settleIdempotencyToken(key, null);
      assert.equal(await claim('h3', t0), null, 'a failed request frees its token');
    });

    test("image tags: set, replace, remove, per tenant; gone with the image's last version", async (t) => {
      const store = await openStore(t);
      await store.setImageTags('tenant-a', 'app', { team: 'x', env: 'dev' });
      await store.setImageTags('tenant-a', 'app', { env: 'prod' });
      await store.setImageTags('tenant-b', 'app', { team: 'y' });
      assert.deepEqual(await store.listImageTags('tenant-a', 'app'), { env: 'prod', team: 'x' });
      await store.removeImageTags('tenant-a', 'app', ['team', 'absent']);
      assert.deepEqual(await store.listImageTags('tenant-a', 'app'), { env: 'prod' });
      assert.deepEqual(await store.listImageTags('tenant-b', 'app'), { team: 'y' });
      // the tags of an image with no version left go with its last delete
      await store.deleteImageVersion('tenant-b', 'app', 1);
      assert.deepEqual(await store.listImageTags('tenant-b', 'app'), {});
    });

    test('tenants: insert once per name, get, list, update quotas', async (t) => {
      const store = await openStore(t);
      const quotas = { maxRunningMicroVMs: 2, maxVcpus: 4, maxMemoryMib: 2048, maxStorageMib: 10240 };
      assert.equal(
        await store.insertTenant({ id: 'ten-a', name: 'acme', quotas, createdAt: '2024-01-01T00:00:00.000Z' }),
        true,
      );
      assert.equal(
        await store.insertTenant({ id: 'ten-b', name: 'acme', quotas, createdAt: '2024-01-02T00:00:00.000Z' }),
        false,
        'names are unique',
      );
      assert.equal(
        await store.insertTenant({ id: 'ten-a', name: 'other', quotas, createdAt: '2024-01-02T00:00:00.000Z' }),
        false,
        'ids are unique',
      );
      assert.equal(
        await store.insertTenant({ id: 'ten-c', name: 'beta', quotas, createdAt: '2024-01-03T00:00:00.000Z' }),
        true,
      );
      assert.deepEqual(await store.getTenant('ten-a'), {
        id: 'ten-a',
        name: 'acme',
        quotas,
        createdAt: '2024-01-01T00:00:00.000Z',
      });
      assert.equal(await store.getTenant('ten-b'), null);
      assert.deepEqual(
        (await store.listTenants()).map((x) => x.name),
        ['acme', 'beta'],
      );
      const raised = { ...quotas, maxVcpus: 8 };
      assert.deepEqual((await store.updateTenantQuotas('ten-a', raised))?.quotas, raised);
      assert.equal(await store.updateTenantQuotas('ten-missing', raised), null);
    });

    test('tenantUsage sums what the tenant holds in the given states', async (t) => {
      const store = await openStore(t);
      await seed(store);
      assert.deepEqual(await store.tenantUsage('tenant-a', ['RUNNING', 'PENDING']), {
        microvms: 4,
        vcpuCount: 8,
        memoryMib: 2048,
      });
      assert.deepEqual(await store.tenantUsage('tenant-b', ['RUNNING']), { microvms: 1, vcpuCount: 2, memoryMib: 512 });
      assert.deepEqual(await store.tenantUsage('tenant-none', ['RUNNING']), {
        microvms: 0,
        vcpuCount: 0,
        memoryMib: 0,
      });
      assert.deepEqual(await store.tenantUsage('tenant-a', []), { microvms: 0, vcpuCount: 0, memoryMib: 0 });
    });

    test('image versions: numbered per image and tenant, updated, listed, deleted', async (t) => {
      const store = await openStore(t);
      const plan = samplePlan({ A: '1' });
      const version = (tenantId: string, name: string, createdAt: string) =>
        store.insertImageVersion({
          tenantId,
          name,
          state: 'PENDING',
          runtime: 'python',
          source: 'upload',
          plan,
          failureReason: null,
          failedStep: null,
          createdAt,
          updatedAt: createdAt,
          finishedAt: null,
          status: 'ACTIVE',
          awsConfig: name === 'other' ? { codeArtifact: { uri: 's3://b/k.zip' } } : null,
          buildHostId: tenantId === 'tenant-b' ? 'h2' : 'h1',
        });
      assert.equal((await version('tenant-a', 'flask', '2024-01-01T00:00:01.000Z')).version, 1);
      assert.equal((await version('tenant-a', 'flask', '2024-01-01T00:00:02.000Z')).version, 2);
      assert.equal((await version('tenant-a', 'other', '2024-01-01T00:00:03.000Z')).version, 1);
      assert.equal(
        (await version('tenant-b', 'flask', '2024-01-01T00:00:04.000Z')).version,
        1,
        'numbering is per tenant',
      );
      await store.updateImageVersion('tenant-a', 'flask', 1, {
        state: 'FAILED',
        failureReason: 'RUN failed',
        failedStep: 'line 3: RUN false',
        finishedAt: '2024-01-01T00:01:00.000Z',
      });
      const failed = await store.getImageVersion('tenant-a', 'flask', 1);
      assert.deepEqual(
        [failed?.state, failed?.failureReason, failed?.failedStep, failed?.finishedAt, failed?.plan],
        ['FAILED', 'RUN failed', 'line 3: RUN false', '2024-01-01T00:01:00.000Z', plan],
      );
      assert.deepEqual(
        (await store.listImageVersions('tenant-a')).map((v) => `${v.name}:${v.version}`),
        ['flask:1', 'flask:2', 'other:1'],
      );
      assert.deepEqual(
        (await store.listImageVersions('tenant-a', 'flask')).map((v) => v.version),
        [1, 2],
      );
      assert.deepEqual(
        (await store.listImageVersionsInStates(['PENDING'])).map((v) => `${v.tenantId}/${v.name}:${v.version}`).sort(),
        ['tenant-a/flask:2', 'tenant-a/other:1', 'tenant-b/flask:1'],
      );
      assert.deepEqual(
        (await store.listImageVersionsInStates(['PENDING'], 'h2')).map((v) => `${v.tenantId}/${v.name}:${v.version}`),
        ['tenant-b/flask:1'],
        "a host's own builds",
      );
      assert.deepEqual((await store.getImageVersion('tenant-a', 'other', 1))?.awsConfig, {
        codeArtifact: { uri: 's3://b/k.zip' },
      });
      assert.equal((await store.getImageVersion('tenant-a', 'flask', 1))?.awsConfig, null);
      await store.updateImageVersion('tenant-a', 'flask', 1, { status: 'INACTIVE' });
      assert.equal((await store.getImageVersion('tenant-a', 'flask', 1))?.status, 'INACTIVE');
      await store.setImageTags('tenant-a', 'flask', { team: 'x' });
      await store.deleteImageVersion('tenant-a', 'flask', 2);
      assert.equal(await store.getImageVersion('tenant-a', 'flask', 2), null);
      assert.deepEqual(await store.listImageTags('tenant-a', 'flask'), { team: 'x' }, 'a version remains: tags stay');
      assert.equal(await store.isImageTombstoned('tenant-a', 'flask', 2), true);
      assert.equal(await store.isImageTombstoned('tenant-a', 'flask', 0), false, 'a version remains');
      assert.equal(await store.isImageTombstoned('tenant-b', 'flask', 2), false, 'tombstones are per tenant');
      assert.equal(
        (await version('tenant-a', 'flask', '2024-01-01T00:00:05.000Z')).version,
        2,
        'the highest remaining + 1',
      );
      assert.equal(await store.isImageTombstoned('tenant-a', 'flask', 2), false, 'a new version 2 is no tombstone');
      await store.deleteImageVersion('tenant-a', 'other', 1);
      assert.equal(await store.isImageTombstoned('tenant-a', 'other', 0), true, 'the last version: the image too');
    });

    test('reopening the same database keeps data and does not re-run migrations', async (t) => {
      const location = await backend.location(t);
      const first = await backend.open(location);
      await first.insertMicroVM(record('mvm-1'));
      await first.insertApiKey(key('hash-1', 'tenant-a', false));
      await first.close();

      const second = await backend.open(location); // would throw "table microvms already exists" if migrations re-ran
      await second.insertMicroVM(record('mvm-2'));
      await second.close();
      const third = await backend.open(location);
      t.after(() => third.close().catch(() => undefined));
      assert.deepEqual(await third.getMicroVM('mvm-1'), record('mvm-1'));
      assert.deepEqual(await third.getMicroVM('mvm-2'), record('mvm-2'));
      assert.deepEqual(await third.findApiKey('hash-1'), { id: 'id-hash-1', tenantId: 'tenant-a', isAdmin: false });
      if (backend.name !== 'sqlite') return;
      const db = new Database(location, { readonly: true });
      try {
        const rows = db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as Array<{
          version: number;
          applied_at: string;
        }>;
        assert.deepEqual(
          rows.map((r) => r.version),
          MIGRATIONS.map((m) => m.version),
        );
        for (const r of rows) assert.ok(!Number.isNaN(Date.parse(r.applied_at)), r.applied_at);
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        db.close();
      }
    });
  });
}

test('migration versions are unique and increasing', () => {
  const versions = MIGRATIONS.map((m) => m.version);
  assert.ok(versions.length > 0);
  assert.deepEqual(
    versions,
    [...versions].sort((a, b) => a - b),
  );
  assert.equal(new Set(versions).size, versions.length);
});

// The store's backends for tests: SQLite in a temporary file and a throwaway Postgres cluster (started on
// first use, stopped after the file's tests), and a sample MicroVM record.
import { after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PostgresDriver } from '../../packages/server/src/store/postgres-driver.js';
import { SqlStore } from '../../packages/server/src/store/sql-store.js';
import { SqliteDriver } from '../../packages/server/src/store/sqlite-driver.js';
import type { BuildPlan } from '../../packages/server/src/images/build-plan.js';
import type { MicroVMRecord } from '../../packages/server/src/store/types.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from './throwaway-postgres.js';

export type After = { after(fn: () => void | Promise<void>): void };

/** A fresh, empty database location for one test: a file path, or a Postgres URL. */
export interface Backend {
  name: 'sqlite' | 'postgres';
  location(t: After): Promise<string>;
  open(location: string): Promise<SqlStore>;
}

let postgres: Promise<ThrowawayPostgres> | null = null;
let databases = 0;
after(async () => (await postgres)?.stop());

export const STORE_BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async location(t) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-sqlite-test-'));
      t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
      return path.join(dir, 'capsule.db');
    },
    open: (file) => SqlStore.open(new SqliteDriver(file)),
  },
  {
    name: 'postgres',
    async location() {
      postgres ??= startThrowawayPostgres();
      return (await postgres).createDatabase(`store_test_${process.pid}_${++databases}`);
    },
    open: (url) => SqlStore.open(new PostgresDriver(url)),
  },
];

/** A new store on `backend`, closed after test `t`. */
export async function openTestStore(backend: Backend, t: After): Promise<SqlStore> {
  const store = await backend.open(await backend.location(t));
  t.after(() => store.close().catch(() => undefined));
  return store;
}

export function sampleRecord(id: string, overrides: Partial<MicroVMRecord> = {}): MicroVMRecord {
  return {
    id,
    tenantId: 'tenant-a',
    state: 'PENDING',
    imageName: 'python',
    imageVersion: 3,
    vcpuCount: 2,
    memoryMib: 512,
    metadata: { team: 'core', 'app.kubernetes.io/name': 'web', 'build-id': '42', quote: 'it\'s "x"' },
    env: { PATH: '/usr/bin', EMPTY: '', UNICODE: 'héllo ✓' },
    egress: 'allowlist',
    network: { egress: 'allowlist', allow: ['pypi.org', '*.example.com', '203.0.113.0/24'], deny: ['198.51.100.7/32'] },
    netSlot: 7,
    jailUid: 200_123,
    aws: { executionRoleArn: 'arn:aws:iam::123456789012:role/app', egressNetworkConnectors: ['arn:x:INTERNET_EGRESS'] },
    maximumDurationSeconds: 3600,
    idlePolicy: { maxIdleDurationSeconds: 900, suspendedDurationSeconds: 0, autoResumeEnabled: true },
    lastActivityAt: null,
    suspendedAt: null,
    accelerator: 'kvm',
    launchedFrom: 'boot',
    kernelRelease: '6.1.0',
    failureReason: null,
    qemuPid: 1234,
    vmDir: '/var/lib/capsule/vms/' + id,
    hostId: 'h1',
    suspendedBlob: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    startedAt: null,
    terminatedAt: null,
    ...overrides,
  };
}

/** A Python app's build plan, `env` its environment. */
export function samplePlan(env: Record<string, string> = {}): BuildPlan {
  return {
    runtime: 'python',
    steps: [],
    env,
    workdir: '/app',
    user: 'root',
    start: ['python3', 'app.py'],
    port: 8080,
    memoryMib: null,
    vcpuCount: null,
  };
}

// The store, written once over a SqlDriver: SQLite by default, Postgres when DATABASE_URL is set.
// Same schema (migrations.ts), same queries; only the JSON metadata lookup differs by dialect.
import { MicroVMChanges } from './microvm-changes.js';
import type { ImageBuildState, MicroVMState, TenantQuotas } from '@capsule/protocol';
import { placeholders, type Row, type SqlDriver } from './driver.js';
import { MIGRATIONS } from './migrations.js';
import type {
  ApiKeyRecord,
  AwsAccessKeyRecord,
  IdempotencyRecord,
  ImageVersionPatch,
  ImageVersionRecord,
  ListFilter,
  MicroVMHistoryEntry,
  MicroVMPatch,
  MicroVMRecord,
  QuotaReservation,
  Store,
  TenantRecord,
  TenantUsage,
} from './types.js';
import { canTransition } from './states.js';
import { listImageTags, removeImageTags, setImageTags } from './image-tags.js';
import * as versions from './image-versions.js';
import * as hosts from './hosts.js';
import * as reservations from './quota-reservations.js';
import * as suspendedBlobs from './suspended-blobs.js';
import * as storage from './microvm-storage.js';
import * as keys from './keys.js';
import * as idempotency from './idempotency-tokens.js';
import * as lists from './microvm-lists.js';
import * as bases from './shared-bases.js';
import type { SharedBaseRecord } from './shared-bases.js';
import { fromRow, toColumns } from './microvm-rows.js';

const tenantFromRow = (row: Row): TenantRecord => ({
  id: row.id as string,
  name: row.name as string,
  quotas: JSON.parse(row.quotas_json as string) as Partial<TenantQuotas>,
  createdAt: row.created_at as string,
});

/** Orders history entries written within one millisecond (transitions of one VM are serialized by their CAS). */
let historyOrd = 0;

export class SqlStore implements Store {
  /** Each VM made or moved to a new state, as it is now, by any server on this database (microvm-changes.ts). */
  private readonly changes: MicroVMChanges;

  private constructor(private readonly db: SqlDriver) {
    this.changes = new MicroVMChanges(
      db.changes ?? null,
      (id) => this.getMicroVM(id),
      (sinceIso) => lists.microVMsChangedSince(this.db, sinceIso),
    );
  }

  onMicroVMChange(listener: (record: MicroVMRecord) => void): () => void {
    return this.changes.subscribe(listener);
  }

  private changed(record: MicroVMRecord | null): void {
    this.changes.changed(record);
  }

  /** Open the store, applying any migrations not yet applied (each in its own transaction). */
  static async open(db: SqlDriver): Promise<SqlStore> {
    await db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)',
    );
    const applied = new Set((await db.query('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await db.transaction(async (tx) => {
        await tx.exec(migration.sql);
        await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
          migration.version,
          new Date().toISOString(),
        ]);
      });
    }
    return new SqlStore(db);
  }

  get dialect(): SqlDriver['dialect'] {
    return this.db.dialect;
  }

  async insertMicroVM(record: MicroVMRecord): Promise<void> {
    const columns = toColumns(record);
    await this.db.run(
      `INSERT INTO microvms (${columns.map(([c]) => c).join(', ')}) VALUES (${placeholders(columns.length)})`,
      columns.map(([, v]) => v),
    );
    await this.appendHistory(record.id, record.state, record.createdAt, null);
    this.changed(record);
  }

  /** One history entry; `ord` orders entries made within the same millisecond. */
  private async appendHistory(id: string, state: MicroVMState, at: string, durationMs: number | null): Promise<void> {
    historyOrd = (historyOrd + 1) % 1_000_000_000;
    await this.db.run(
      'INSERT INTO microvm_history (microvm_id, state, at, ord, duration_ms) VALUES ($1, $2, $3, $4, $5)',
      [id, state, at, historyOrd, durationMs === null ? null : Math.round(durationMs)],
    );
  }

  async history(id: string): Promise<MicroVMHistoryEntry[]> {
    const rows = await this.db.query(
      'SELECT state, at, duration_ms FROM microvm_history WHERE microvm_id = $1 ORDER BY at, ord',
      [id],
    );
    return rows.map((r) => ({
      state: r.state as MicroVMState,
      at: String(r.at),
      durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
    }));
  }

  async transition(
    id: string,
    from: MicroVMState | readonly MicroVMState[],
    to: MicroVMState,
    patch: MicroVMPatch = {},
    timing?: { durationMs: number },
  ): Promise<MicroVMRecord | null> {
    const states = typeof from === 'string' ? [from] : [...from];
    const illegal = states.filter((s) => !canTransition(s, to));
    if (states.length === 0 || illegal.length > 0)
      throw new Error(`MicroVM ${id}: ${illegal.join(', ') || '(no state)'} → ${to} is not in the state table`);
    const record = await this.update(id, { ...patch, state: to }, states);
    if (record) await this.appendHistory(id, to, record.updatedAt, timing?.durationMs ?? null);
    this.changed(record);
    return record;
  }

  async updateMicroVM(id: string, patch: MicroVMPatch): Promise<MicroVMRecord | null> {
    if ('state' in patch) throw new Error(`MicroVM ${id}: a state changes only through transition()`);
    return this.update(id, patch, []);
  }

  /** UPDATE one VM, only while it is in one of `inStates` (any state if none are given). */
  private async update(
    id: string,
    patch: Partial<MicroVMRecord>,
    inStates: MicroVMState[],
  ): Promise<MicroVMRecord | null> {
    const columns = toColumns({ ...patch, updatedAt: new Date().toISOString() });
    const params = [...columns.map(([, v]) => v), id];
    const sets = columns.map(([c], i) => `${c} = $${i + 1}`).join(', ');
    const guard = inStates.length > 0 ? ` AND state IN (${placeholders(inStates.length, params.length + 1)})` : '';
    params.push(...inStates);
    const changed = await this.db.run(`UPDATE microvms SET ${sets} WHERE id = $${columns.length + 1}${guard}`, params);
    return changed === 1 ? this.getMicroVM(id) : null;
  }

  async getMicroVM(id: string): Promise<MicroVMRecord | null> {
    const [row] = await this.db.query('SELECT * FROM microvms WHERE id = $1', [id]);
    return row ? fromRow(row) : null;
  }

  listMicroVMs(filter: ListFilter): Promise<MicroVMRecord[]> {
    return lists.listMicroVMs(this.db, filter);
  }

  listMicroVMsInStates(states: MicroVMState[], hostId?: string): Promise<MicroVMRecord[]> {
    return lists.listMicroVMsInStates(this.db, states, hostId);
  }

  listTenantMicroVMsInStates(tenantId: string, states: MicroVMState[]): Promise<MicroVMRecord[]> {
    return lists.listTenantMicroVMsInStates(this.db, tenantId, states);
  }

  listMicroVMsLeftHolding(hostId: string): Promise<MicroVMRecord[]> {
    return lists.listMicroVMsLeftHolding(this.db, hostId);
  }

  useSharedBase(sha: string, generation: string, nowIso: string): Promise<string> {
    return bases.useSharedBase(this.db, sha, generation, nowIso);
  }

  listSharedBases(): Promise<SharedBaseRecord[]> {
    return bases.listSharedBases(this.db);
  }

  dropSharedBase(sha: string, generation: string, usedBeforeIso: string): Promise<boolean> {
    return bases.dropSharedBase(this.db, sha, generation, usedBeforeIso);
  }

  publishSuspendedBlob(id: string, suspendedAt: string, key: string): Promise<boolean> {
    return suspendedBlobs.publishSuspendedBlob(this.db, id, suspendedAt, key);
  }

  async takeSuspendedMicroVM(id: string, fromHostId: string, toHostId: string): Promise<MicroVMRecord | null> {
    if (!(await suspendedBlobs.takeSuspendedMicroVM(this.db, id, fromHostId, toHostId))) return null;
    const record = await this.getMicroVM(id);
    this.changed(record);
    return record;
  }

  holdSuspendedOnHost(id: string, hostId: string): Promise<boolean> {
    return suspendedBlobs.holdSuspendedOnHost(this.db, id, hostId);
  }

  reserveTenantUsage(
    reservation: QuotaReservation,
    states: readonly MicroVMState[],
    check: (usage: TenantUsage) => void,
  ): Promise<void> {
    return reservations.reserveTenantUsage(this.db, reservation, states, check, new Date().toISOString());
  }

  releaseReservation(id: string): Promise<void> {
    return reservations.releaseReservation(this.db, id);
  }

  releaseHostReservations(hostId: string): Promise<number> {
    return reservations.releaseHostReservations(this.db, hostId);
  }

  recordMicroVMStorage(hostId: string, entries: ReadonlyArray<{ id: string; bytes: number }>): Promise<void> {
    return storage.recordMicroVMStorage(this.db, hostId, entries, new Date().toISOString());
  }

  microVMStorage(ids: readonly string[]): Promise<Map<string, number>> {
    return storage.microVMStorage(this.db, ids);
  }

  dropEndedMicroVMStorage(): Promise<number> {
    return storage.dropEndedMicroVMStorage(this.db);
  }

  /** Records from before hosts (host_id NULL) become `hostId`'s: the one machine that made them. */
  async claimUnhostedMicroVMs(hostId: string): Promise<number> {
    return this.db.run('UPDATE microvms SET host_id = $1 WHERE host_id IS NULL', [hostId]);
  }

  registerHost(host: Parameters<typeof hosts.registerHost>[1]): Promise<hosts.HostRecord | null> {
    return hosts.registerHost(this.db, host);
  }

  renewHostLease(
    id: string,
    heartbeatAt: string,
    leaseExpiresAt: string,
    ready?: readonly string[],
  ): Promise<hosts.HostRecord | null> {
    return hosts.renewHostLease(this.db, id, heartbeatAt, leaseExpiresAt, ready);
  }

  listHosts(): Promise<hosts.HostRecord[]> {
    return hosts.listHosts(this.db);
  }

  expiredHosts(nowIso: string): Promise<string[]> {
    return hosts.expiredHosts(this.db, nowIso);
  }

  markHostDown(id: string, nowIso: string): Promise<boolean> {
    return hosts.markHostDown(this.db, id, nowIso);
  }

  hostUsage(states: readonly MicroVMState[]): Promise<Map<string, hosts.HostUsage>> {
    return hosts.hostUsage(this.db, states);
  }

  setHostDraining(id: string, draining: boolean): Promise<hosts.HostRecord | null> {
    return hosts.setHostDraining(this.db, id, draining);
  }

  async tenantUsage(tenantId: string, states: MicroVMState[]): Promise<TenantUsage> {
    if (states.length === 0) return { microvms: 0, vcpuCount: 0, memoryMib: 0 };
    const [row] = await this.db.query(
      `SELECT COUNT(*) AS n, COALESCE(SUM(vcpu_count), 0) AS vcpus, COALESCE(SUM(memory_mib), 0) AS mib FROM ` +
        `microvms WHERE tenant_id = $1 AND state IN (${placeholders(states.length, 2)})`,
      [tenantId, ...states],
    );
    return { microvms: Number(row.n), vcpuCount: Number(row.vcpus), memoryMib: Number(row.mib) };
  }

  async countMicroVMsByState(): Promise<Partial<Record<MicroVMState, number>>> {
    const rows = await this.db.query('SELECT state, COUNT(*) AS n FROM microvms GROUP BY state');
    return Object.fromEntries(rows.map((r) => [r.state as MicroVMState, Number(r.n)]));
  }

  async insertTenant(tenant: TenantRecord): Promise<boolean> {
    const changed = await this.db.run(
      'INSERT INTO tenants (id, name, quotas_json, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [tenant.id, tenant.name, JSON.stringify(tenant.quotas), tenant.createdAt],
    );
    return changed === 1;
  }

  async getTenant(id: string): Promise<TenantRecord | null> {
    const [row] = await this.db.query('SELECT * FROM tenants WHERE id = $1', [id]);
    return row ? tenantFromRow(row) : null;
  }

  async listTenants(): Promise<TenantRecord[]> {
    return (await this.db.query('SELECT * FROM tenants ORDER BY created_at, id')).map(tenantFromRow);
  }

  async updateTenantQuotas(id: string, quotas: TenantQuotas): Promise<TenantRecord | null> {
    await this.db.run('UPDATE tenants SET quotas_json = $1 WHERE id = $2', [JSON.stringify(quotas), id]);
    return this.getTenant(id);
  }

  findApiKey(keyHash: string): Promise<Pick<ApiKeyRecord, 'id' | 'tenantId' | 'isAdmin'> | null> {
    return keys.findApiKey(this.db, keyHash);
  }

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    await keys.insertKeyRow(this.db, key);
  }

  listApiKeys(tenantId: string): Promise<Array<Omit<ApiKeyRecord, 'keyHash'>>> {
    return keys.listApiKeys(this.db, tenantId);
  }

  deleteApiKey(tenantId: string, keyId: string): Promise<boolean> {
    return keys.deleteApiKey(this.db, tenantId, keyId);
  }

  insertAwsAccessKey(key: AwsAccessKeyRecord): Promise<void> {
    return keys.insertAwsAccessKey(this.db, key);
  }

  findAwsAccessKey(accessKeyId: string): Promise<AwsAccessKeyRecord | null> {
    return keys.findAwsAccessKey(this.db, accessKeyId);
  }

  claimIdempotencyToken(record: IdempotencyRecord, nowIso: string): Promise<IdempotencyRecord | null> {
    return idempotency.claimIdempotencyToken(this.db, record, nowIso);
  }

  settleIdempotencyToken(
    record: Pick<IdempotencyRecord, 'tenantId' | 'operation' | 'token'>,
    resourceId: string | null,
  ): Promise<void> {
    return idempotency.settleIdempotencyToken(this.db, record, resourceId);
  }

  listAwsAccessKeys(keyId: string): Promise<AwsAccessKeyRecord[]> {
    return keys.listAwsAccessKeys(this.db, keyId);
  }

  replaceAdminKey(key: ApiKeyRecord): Promise<void> {
    return keys.replaceAdminKey(this.db, key);
  }

  clusterAdminKey(candidate: ApiKeyRecord & { sealedKey: string }): Promise<string> {
    return keys.clusterAdminKey(this.db, candidate);
  }

  async insertImageVersion(record: Omit<ImageVersionRecord, 'version'>): Promise<ImageVersionRecord> {
    // outside a transaction: a lost race on the number fails the statement, and Postgres would abort the whole of one
    for (let attempt = 0; !(await versions.insertImageVersion(this.db, record)); attempt++)
      if (attempt >= 5) throw new Error(`image ${record.name}: no version number could be taken`);
    return versions.insertedImageVersion(this.db, record);
  }

  updateImageVersion(tenantId: string, name: string, version: number, patch: ImageVersionPatch): Promise<void> {
    return versions.updateImageVersion(this.db, tenantId, name, version, patch);
  }

  getImageVersion(tenantId: string, name: string, version: number): Promise<ImageVersionRecord | null> {
    return versions.getImageVersion(this.db, tenantId, name, version);
  }

  listImageVersions(tenantId: string, name?: string): Promise<ImageVersionRecord[]> {
    return versions.listImageVersions(this.db, tenantId, name);
  }

  deleteImageVersion(tenantId: string, name: string, version: number): Promise<void> {
    return this.db.transaction((tx) => versions.deleteImageVersion(tx, tenantId, name, version));
  }

  isImageTombstoned(tenantId: string, name: string, version: number): Promise<boolean> {
    return versions.isImageTombstoned(this.db, tenantId, name, version);
  }

  setImageTags(tenantId: string, name: string, tags: Record<string, string>): Promise<void> {
    return this.db.transaction((tx) => setImageTags(tx, tenantId, name, tags));
  }

  removeImageTags(tenantId: string, name: string, keys: string[]): Promise<void> {
    return this.db.transaction((tx) => removeImageTags(tx, tenantId, name, keys));
  }

  listImageTags(tenantId: string, name: string): Promise<Record<string, string>> {
    return listImageTags(this.db, tenantId, name);
  }

  listImageVersionsInStates(states: ImageBuildState[], buildHostId?: string): Promise<ImageVersionRecord[]> {
    return versions.listImageVersionsInStates(this.db, states, buildHostId);
  }

  async close(): Promise<void> {
    await this.changes.close();
    await this.db.close();
  }
}

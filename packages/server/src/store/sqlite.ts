// SQLite store (better-sqlite3 v12; v13 crashes Node 20). WAL mode, versioned migrations.
import Database from 'better-sqlite3';
import type { MicroVMState } from '@capsule/protocol';
import { MIGRATIONS } from './migrations.js';
import type { ListFilter, MicroVMRecord, Store } from './types.js';

type Row = Record<string, unknown>;

const COLUMNS: Array<[keyof MicroVMRecord, string, 'json' | 'plain']> = [
  ['id', 'id', 'plain'],
  ['tenantId', 'tenant_id', 'plain'],
  ['state', 'state', 'plain'],
  ['imageName', 'image_name', 'plain'],
  ['imageVersion', 'image_version', 'plain'],
  ['vcpuCount', 'vcpu_count', 'plain'],
  ['memoryMib', 'memory_mib', 'plain'],
  ['metadata', 'metadata_json', 'json'],
  ['env', 'env_json', 'json'],
  ['egress', 'egress', 'plain'],
  ['maximumDurationSeconds', 'maximum_duration_seconds', 'plain'],
  ['accelerator', 'accelerator', 'plain'],
  ['launchedFrom', 'launched_from', 'plain'],
  ['kernelRelease', 'kernel_release', 'plain'],
  ['failureReason', 'failure_reason', 'plain'],
  ['qemuPid', 'qemu_pid', 'plain'],
  ['vmDir', 'vm_dir', 'plain'],
  ['createdAt', 'created_at', 'plain'],
  ['updatedAt', 'updated_at', 'plain'],
  ['startedAt', 'started_at', 'plain'],
  ['terminatedAt', 'terminated_at', 'plain'],
  ['idlePolicy', 'idle_policy_json', 'json'],
  ['lastActivityAt', 'last_activity_at', 'plain'],
  ['suspendedAt', 'suspended_at', 'plain'],
];
const COLUMN_OF = new Map(COLUMNS.map(([field, column, kind]) => [field, { column, kind }]));

function toRow(patch: Partial<MicroVMRecord>): Row {
  const row: Row = {};
  for (const [field, value] of Object.entries(patch)) {
    const spec = COLUMN_OF.get(field as keyof MicroVMRecord);
    if (!spec) continue;
    row[spec.column] = spec.kind === 'json' ? JSON.stringify(value) : value;
  }
  return row;
}

function fromRow(row: Row): MicroVMRecord {
  const record: Row = {};
  for (const [field, column, kind] of COLUMNS) record[field] = kind === 'json' ? JSON.parse(row[column] as string) : row[column];
  return record as unknown as MicroVMRecord;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const applied = new Set(this.db.prepare('SELECT version FROM schema_migrations').all().map((r) => (r as Row).version as number));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      this.db.transaction(() => {
        this.db.exec(migration.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(migration.version, new Date().toISOString());
      })();
    }
  }

  async insertMicroVM(record: MicroVMRecord): Promise<void> {
    const row = toRow(record);
    const columns = Object.keys(row);
    this.db.prepare(`INSERT INTO microvms (${columns.join(', ')}) VALUES (${columns.map((c) => '@' + c).join(', ')})`).run(row);
  }

  async updateMicroVM(id: string, expectedState: MicroVMState | null, patch: Partial<MicroVMRecord>): Promise<MicroVMRecord | null> {
    const row = toRow({ ...patch, updatedAt: new Date().toISOString() });
    const sets = Object.keys(row).map((c) => `${c} = @${c}`).join(', ');
    const guard = expectedState ? ' AND state = @expected_state' : '';
    const result = this.db.prepare(`UPDATE microvms SET ${sets} WHERE id = @where_id${guard}`).run({ ...row, where_id: id, expected_state: expectedState });
    return result.changes === 1 ? this.getMicroVM(id) : null;
  }

  async getMicroVM(id: string): Promise<MicroVMRecord | null> {
    const row = this.db.prepare('SELECT * FROM microvms WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  async listMicroVMs(filter: ListFilter): Promise<MicroVMRecord[]> {
    const where = ['tenant_id = @tenant'];
    const params: Row = { tenant: filter.tenantId, limit: filter.limit };
    if (filter.state) (where.push('state = @state'), (params.state = filter.state));
    if (filter.imageName) (where.push('image_name = @image'), (params.image = filter.imageName));
    if (filter.after) (where.push('id > @after'), (params.after = filter.after));
    Object.entries(filter.metadata ?? {}).forEach(([key, value], i) => {
      // json_each compares the key as data: no JSON-path quoting for a caller-supplied key
      where.push(`EXISTS (SELECT 1 FROM json_each(metadata_json) WHERE json_each.key = @mk${i} AND json_each.value = @mv${i})`);
      params[`mk${i}`] = key;
      params[`mv${i}`] = value;
    });
    const rows = this.db.prepare(`SELECT * FROM microvms WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`).all(params) as Row[];
    return rows.map(fromRow);
  }

  async listMicroVMsInStates(states: MicroVMState[]): Promise<MicroVMRecord[]> {
    const rows = this.db.prepare(`SELECT * FROM microvms WHERE state IN (${states.map(() => '?').join(', ')})`).all(...states) as Row[];
    return rows.map(fromRow);
  }

  async findApiKey(keyHash: string): Promise<{ tenantId: string; isAdmin: boolean } | null> {
    const row = this.db.prepare('SELECT tenant_id, is_admin FROM api_keys WHERE key_hash = ?').get(keyHash) as Row | undefined;
    return row ? { tenantId: row.tenant_id as string, isAdmin: row.is_admin === 1 } : null;
  }

  async insertApiKey(key: { keyHash: string; tenantId: string; isAdmin: boolean; createdAt: string }): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO api_keys (key_hash, tenant_id, is_admin, created_at) VALUES (?, ?, ?, ?)')
      .run(key.keyHash, key.tenantId, key.isAdmin ? 1 : 0, key.createdAt);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

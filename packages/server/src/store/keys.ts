// API keys (stored by hash) and AWS-style access keys (their secrets sealed) in SQL.
import type { SqlDriver, SqlExecutor, Row } from './driver.js';
import type { ApiKeyRecord, AwsAccessKeyRecord } from './types.js';

/** An API key's row, never its hash. */
const apiKeyFromRow = (row: Row): Omit<ApiKeyRecord, 'keyHash'> => ({
  id: (row.id as string | null) ?? '',
  tenantId: row.tenant_id as string,
  isAdmin: Number(row.is_admin) === 1,
  name: (row.name as string | null) ?? null,
  createdAt: row.created_at as string,
});

const awsAccessKeyFromRow = (row: Row): AwsAccessKeyRecord => ({
  accessKeyId: row.access_key_id as string,
  keyId: row.key_id as string,
  tenantId: row.tenant_id as string,
  secretSealed: row.secret_sealed as string,
  createdAt: row.created_at as string,
});

/** Inserting a hash that exists changes nothing. */
export function insertKeyRow(db: SqlExecutor, key: ApiKeyRecord): Promise<number> {
  return db.run(
    'INSERT INTO api_keys (key_hash, id, tenant_id, is_admin, name, created_at, sealed_key) VALUES ($1, $2, $3, ' +
      '$4, $5, $6, $7) ON CONFLICT DO NOTHING',
    [key.keyHash, key.id, key.tenantId, key.isAdmin ? 1 : 0, key.name, key.createdAt, key.sealedKey ?? null],
  );
}

export async function findApiKey(
  db: SqlExecutor,
  keyHash: string,
): Promise<Pick<ApiKeyRecord, 'id' | 'tenantId' | 'isAdmin'> | null> {
  const [row] = await db.query('SELECT id, tenant_id, is_admin FROM api_keys WHERE key_hash = $1', [keyHash]);
  return row
    ? { id: (row.id as string | null) ?? '', tenantId: row.tenant_id as string, isAdmin: Number(row.is_admin) === 1 }
    : null;
}

export async function listApiKeys(db: SqlExecutor, tenantId: string): Promise<Array<Omit<ApiKeyRecord, 'keyHash'>>> {
  const rows = await db.query(
    'SELECT id, tenant_id, is_admin, name, created_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id',
    [tenantId],
  );
  return rows.map(apiKeyFromRow);
}

/** The key and the AWS pairs issued on it, in one transaction. */
export function deleteApiKey(db: SqlDriver, tenantId: string, keyId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.run('DELETE FROM aws_access_keys WHERE tenant_id = $1 AND key_id = $2', [tenantId, keyId]);
    return (await tx.run('DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2', [tenantId, keyId])) > 0;
  });
}

/** The admin key replaced by `key`: the store stops honouring the old one in the same transaction. */
export async function replaceAdminKey(db: SqlDriver, key: ApiKeyRecord): Promise<void> {
  await db.transaction((tx) => replaceAdminKeyIn(tx, key));
}

async function replaceAdminKeyIn(tx: SqlExecutor, key: ApiKeyRecord): Promise<void> {
  await tx.run('DELETE FROM api_keys WHERE is_admin = $1 AND key_hash <> $2', [1, key.keyHash]);
  await insertKeyRow(tx, { ...key, isAdmin: true });
  if (key.sealedKey)
    await tx.run('UPDATE api_keys SET sealed_key = $1 WHERE key_hash = $2', [key.sealedKey, key.keyHash]);
}

/** The cluster's sealed admin key, or `candidate` made it if there is none (under a lock: one wins a race). */
export async function clusterAdminKey(db: SqlDriver, candidate: ApiKeyRecord & { sealedKey: string }): Promise<string> {
  return db.transaction(async (tx) => {
    if (db.dialect === 'postgres') await tx.query("SELECT pg_advisory_xact_lock(hashtext('capsule-admin-key'))");
    const [row] = await tx.query('SELECT sealed_key FROM api_keys WHERE is_admin = 1 AND sealed_key IS NOT NULL');
    if (row) return String(row.sealed_key);
    await replaceAdminKeyIn(tx, candidate);
    return candidate.sealedKey;
  });
}

export async function insertAwsAccessKey(db: SqlExecutor, key: AwsAccessKeyRecord): Promise<void> {
  await db.run(
    'INSERT INTO aws_access_keys (access_key_id, key_id, tenant_id, secret_sealed, created_at) ' +
      'VALUES ($1, $2, $3, $4, $5) ON CONFLICT (access_key_id) DO NOTHING',
    [key.accessKeyId, key.keyId, key.tenantId, key.secretSealed, key.createdAt],
  );
}

export async function findAwsAccessKey(db: SqlExecutor, accessKeyId: string): Promise<AwsAccessKeyRecord | null> {
  const [row] = await db.query('SELECT * FROM aws_access_keys WHERE access_key_id = $1', [accessKeyId]);
  return row ? awsAccessKeyFromRow(row) : null;
}

export async function listAwsAccessKeys(db: SqlExecutor, keyId: string): Promise<AwsAccessKeyRecord[]> {
  const rows = await db.query('SELECT * FROM aws_access_keys WHERE key_id = $1 ORDER BY created_at', [keyId]);
  return rows.map(awsAccessKeyFromRow);
}

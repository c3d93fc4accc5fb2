// The admin key: made on first start and written (mode 0600) to <dataDir>/admin-key, so the CLI on the same machine
// works with no set-up; the store keeps its hash. On one server the file is the key: one replaced by hand (or a
// rotation whose file write was lost) wins at the next start. In a cluster (CAPSULE_CLUSTER_KEY) every server has its
// own data dir, so the store is the key instead: it keeps the key sealed under the cluster key, the first server to
// start sets it, and every server writes it to its own file at start. A rotation on any server is in force on all at
// once (they check the store's hash); another server's file says the new key after its next start.
import fs from 'node:fs';
import path from 'node:path';
import type { TenantQuotas } from '@capsule/protocol';
import type { ServerKey } from '../aws/server-key.js';
import type { ApiKeyRecord, Store } from '../store/types.js';
import { ADMIN_KEY_ID, DEFAULT_TENANT, hashKey, newApiKey } from './auth.js';
import { secretFileText } from '../secret-file.js';

const adminKeyFile = (dataDir: string): string => path.join(dataDir, 'admin-key');

/** The key written to `file` whole (a reader sees the old or the new). */
function writeKeyFile(file: string, key: string): void {
  fs.writeFileSync(`${file}.new`, `${key}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.new`, file);
}

function adminKeyRecord(key: string, cluster: ServerKey | null): ApiKeyRecord {
  return {
    id: ADMIN_KEY_ID,
    keyHash: hashKey(key),
    tenantId: DEFAULT_TENANT,
    isAdmin: true,
    name: 'admin',
    createdAt: new Date().toISOString(),
    sealedKey: cluster ? cluster.seal(key, ADMIN_KEY_ID) : null,
  };
}

/**
 * The admin key and its tenant (`default`), created on first start. `cluster`: the server key that seals under the
 * cluster key (null: a server alone).
 */
export async function ensureAdminKey(
  dataDir: string,
  store: Store,
  defaultQuotas: TenantQuotas,
  cluster: ServerKey | null,
): Promise<string> {
  await store.insertTenant({
    id: DEFAULT_TENANT,
    name: DEFAULT_TENANT,
    quotas: defaultQuotas,
    createdAt: new Date().toISOString(),
  });
  const file = adminKeyFile(dataDir);
  const key = secretFileText(file, newApiKey);
  if (!cluster) {
    await store.replaceAdminKey(adminKeyRecord(key, null));
    return key;
  }
  const candidate = adminKeyRecord(key, cluster);
  const inForce = cluster.open(
    await store.clusterAdminKey({ ...candidate, sealedKey: candidate.sealedKey! }),
    ADMIN_KEY_ID,
  );
  if (inForce !== key) writeKeyFile(file, inForce);
  return inForce;
}

/** A new admin key: the store stops honouring the old one in the same transaction, then the file is replaced. */
export async function rotateAdminKey(
  dataDir: string,
  store: Store,
  cluster: ServerKey | null,
): Promise<{ key: string; createdAt: string }> {
  const key = newApiKey();
  const record = adminKeyRecord(key, cluster);
  await store.replaceAdminKey(record);
  writeKeyFile(adminKeyFile(dataDir), key);
  return { key, createdAt: record.createdAt };
}

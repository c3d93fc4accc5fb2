// AWS clientTokens (RunMicrovm, CreateMicrovmImage…): one per tenant, operation and token, claimed by the first
// request and settled with what it made (or freed when it failed), so a retry answers the same resource.
import type { SqlDriver, SqlExecutor } from './driver.js';
import type { IdempotencyRecord } from './types.js';

/** Claimed (null) or, when another request holds the token, what it holds. */
export async function claimIdempotencyToken(
  db: SqlDriver,
  record: IdempotencyRecord,
  nowIso: string,
): Promise<IdempotencyRecord | null> {
  const { tenantId, operation, token } = record;
  return db.transaction(async (tx) => {
    const key = [tenantId, operation, token];
    const where = 'tenant_id = $1 AND operation = $2 AND token = $3';
    await tx.run(`DELETE FROM idempotency_tokens WHERE ${where} AND expires_at <= $4`, [...key, nowIso]);
    // a holder whose request fails frees the token between our insert and our read: then take it again
    for (let attempt = 0; ; attempt++) {
      const inserted = await tx.run(
        'INSERT INTO idempotency_tokens (tenant_id, operation, token, request_hash, resource_id, expires_at) ' +
          'VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING',
        [...key, record.requestHash, record.expiresAt],
      );
      if (inserted > 0) return null;
      const [row] = await tx.query(`SELECT * FROM idempotency_tokens WHERE ${where}`, key);
      if (!row && attempt < 3) continue;
      if (!row) throw new Error(`client token ${token} is taken and freed over and over`);
      return {
        tenantId,
        operation,
        token,
        requestHash: row.request_hash as string,
        resourceId: (row.resource_id as string | null) ?? null,
        expiresAt: row.expires_at as string,
      };
    }
  });
}

/** What the claim made (its resource id), or the token freed (null) when it made nothing. */
export async function settleIdempotencyToken(
  db: SqlExecutor,
  { tenantId, operation, token }: Pick<IdempotencyRecord, 'tenantId' | 'operation' | 'token'>,
  resourceId: string | null,
): Promise<void> {
  const key = [tenantId, operation, token];
  const where = 'tenant_id = $1 AND operation = $2 AND token = $3';
  if (resourceId === null) await db.run(`DELETE FROM idempotency_tokens WHERE ${where}`, key);
  else await db.run(`UPDATE idempotency_tokens SET resource_id = $4 WHERE ${where}`, [...key, resourceId]);
}

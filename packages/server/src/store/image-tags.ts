// An image's tags (the AWS API's TagResource/UntagResource/ListTags), a key → value map per tenant and image
// name, kept while the image has a version: deleting its last version deletes them.
import type { SqlExecutor } from './driver.js';

export async function setImageTags(
  db: SqlExecutor,
  tenantId: string,
  name: string,
  tags: Record<string, string>,
): Promise<void> {
  for (const [key, value] of Object.entries(tags)) {
    await db.run(
      'INSERT INTO image_tags (tenant_id, image_name, tag_key, tag_value) VALUES ($1, $2, $3, $4) ' +
        'ON CONFLICT (tenant_id, image_name, tag_key) DO UPDATE SET tag_value = $4',
      [tenantId, name, key, value],
    );
  }
}

export async function removeImageTags(db: SqlExecutor, tenantId: string, name: string, keys: string[]): Promise<void> {
  for (const key of keys) {
    await db.run('DELETE FROM image_tags WHERE tenant_id = $1 AND image_name = $2 AND tag_key = $3', [
      tenantId,
      name,
      key,
    ]);
  }
}

export async function listImageTags(db: SqlExecutor, tenantId: string, name: string): Promise<Record<string, string>> {
  const rows = await db.query(
    'SELECT tag_key, tag_value FROM image_tags WHERE tenant_id = $1 AND image_name = $2 ORDER BY tag_key',
    [tenantId, name],
  );
  return Object.fromEntries(rows.map((r) => [r.tag_key as string, r.tag_value as string]));
}

/** After a version is deleted: an image with no version left has no tags either. */
export async function dropTagsOfGoneImage(db: SqlExecutor, tenantId: string, name: string): Promise<void> {
  await db.run(
    'DELETE FROM image_tags WHERE tenant_id = $1 AND image_name = $2 AND NOT EXISTS ' +
      '(SELECT 1 FROM image_versions WHERE tenant_id = $1 AND name = $2)',
    [tenantId, name],
  );
}

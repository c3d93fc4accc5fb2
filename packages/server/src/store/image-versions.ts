// Image versions in SQL: the rows of image_versions, and the tombstones deletions leave (image_tombstones), so
// a repeated AWS delete answers DELETED rather than not found. Version 0 in a tombstone is the whole image.
import type { BuildPlan } from '../images/build-plan.js';
import { placeholders, type Row, type SqlExecutor } from './driver.js';
import { dropTagsOfGoneImage } from './image-tags.js';
import type { ImageBuildState } from '@capsule/protocol';
import type { ImageVersionPatch, ImageVersionRecord } from './types.js';

/** How long a deletion is remembered. */
const TOMBSTONE_MS = 8 * 3600_000;
const WHOLE_IMAGE = 0;

const imageFromRow = (row: Row): ImageVersionRecord => ({
  tenantId: row.tenant_id as string,
  name: row.name as string,
  version: Number(row.version),
  state: row.state as ImageVersionRecord['state'],
  runtime: row.runtime as string,
  source: row.source as string,
  plan: JSON.parse(row.plan_json as string) as BuildPlan,
  failureReason: (row.failure_reason as string | null) ?? null,
  failedStep: (row.failed_step as string | null) ?? null,
  createdAt: row.created_at as string,
  updatedAt: row.updated_at as string,
  finishedAt: (row.finished_at as string | null) ?? null,
  status: row.status as ImageVersionRecord['status'],
  awsConfig: row.aws_json === null || row.aws_json === undefined ? null : JSON.parse(row.aws_json as string),
  buildHostId: (row.build_host_id as string | null) ?? null,
});

/** Insert with the next number, computed in the statement: a concurrent insert of the same number loses on the key. */
export async function insertImageVersion(
  db: SqlExecutor,
  record: Omit<ImageVersionRecord, 'version'>,
): Promise<boolean> {
  try {
    await db.run(
      `INSERT INTO image_versions (tenant_id, name, version, state, runtime, source, plan_json, failure_reason,
         failed_step, created_at, updated_at, finished_at, status, aws_json, build_host_id)
       SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
       FROM image_versions WHERE tenant_id = $1 AND name = $2`,
      [
        record.tenantId,
        record.name,
        record.state,
        record.runtime,
        record.source,
        JSON.stringify(record.plan),
        record.failureReason,
        record.failedStep,
        record.createdAt,
        record.updatedAt,
        record.finishedAt,
        record.status,
        record.awsConfig === null ? null : JSON.stringify(record.awsConfig),
        record.buildHostId,
      ],
    );
    return true;
  } catch (err) {
    if (/UNIQUE|unique|PRIMARY/.test((err as Error).message)) return false;
    throw err;
  }
}

/** The version insertImageVersion just made (the newest with that creation time), its tombstones cleared. */
export async function insertedImageVersion(
  db: SqlExecutor,
  record: Omit<ImageVersionRecord, 'version'>,
): Promise<ImageVersionRecord> {
  const [row] = await db.query(
    'SELECT * FROM image_versions WHERE tenant_id = $1 AND name = $2 AND created_at = $3 ORDER BY version DESC LIMIT 1',
    [record.tenantId, record.name, record.createdAt],
  );
  const inserted = imageFromRow(row);
  await db.run('DELETE FROM image_tombstones WHERE tenant_id = $1 AND name = $2 AND version IN ($3, $4)', [
    inserted.tenantId,
    inserted.name,
    inserted.version,
    WHOLE_IMAGE,
  ]);
  return inserted;
}

export async function updateImageVersion(
  db: SqlExecutor,
  tenantId: string,
  name: string,
  version: number,
  patch: ImageVersionPatch,
): Promise<void> {
  const columns: Array<[string, unknown]> = [['updated_at', new Date().toISOString()]];
  if (patch.state !== undefined) columns.push(['state', patch.state]);
  if (patch.failureReason !== undefined) columns.push(['failure_reason', patch.failureReason]);
  if (patch.failedStep !== undefined) columns.push(['failed_step', patch.failedStep]);
  if (patch.finishedAt !== undefined) columns.push(['finished_at', patch.finishedAt]);
  if (patch.status !== undefined) columns.push(['status', patch.status]);
  const sets = columns.map(([c], i) => `${c} = $${i + 4}`).join(', ');
  await db.run(`UPDATE image_versions SET ${sets} WHERE tenant_id = $1 AND name = $2 AND version = $3`, [
    tenantId,
    name,
    version,
    ...columns.map(([, v]) => v),
  ]);
}

export async function getImageVersion(
  db: SqlExecutor,
  tenantId: string,
  name: string,
  version: number,
): Promise<ImageVersionRecord | null> {
  const [row] = await db.query('SELECT * FROM image_versions WHERE tenant_id = $1 AND name = $2 AND version = $3', [
    tenantId,
    name,
    version,
  ]);
  return row ? imageFromRow(row) : null;
}

export async function listImageVersions(
  db: SqlExecutor,
  tenantId: string,
  name?: string,
): Promise<ImageVersionRecord[]> {
  const rows =
    name === undefined
      ? await db.query('SELECT * FROM image_versions WHERE tenant_id = $1 ORDER BY name, version', [tenantId])
      : await db.query('SELECT * FROM image_versions WHERE tenant_id = $1 AND name = $2 ORDER BY version', [
          tenantId,
          name,
        ]);
  return rows.map(imageFromRow);
}

/** Versions in `states`; with `buildHostId`, only those that host builds (or that no host was recorded for). */
export async function listImageVersionsInStates(
  db: SqlExecutor,
  states: ImageBuildState[],
  buildHostId?: string,
): Promise<ImageVersionRecord[]> {
  if (states.length === 0) return [];
  const onHost =
    buildHostId === undefined ? '' : ` AND (build_host_id = $${states.length + 1} OR build_host_id IS NULL)`;
  const params = buildHostId === undefined ? states : [...states, buildHostId];
  return (
    await db.query(`SELECT * FROM image_versions WHERE state IN (${placeholders(states.length)})${onHost}`, params)
  ).map(imageFromRow);
}

async function tombstone(db: SqlExecutor, tenantId: string, name: string, version: number, now: Date): Promise<void> {
  await db.run(
    'INSERT INTO image_tombstones (tenant_id, name, version, deleted_at) VALUES ($1, $2, $3, $4) ' +
      'ON CONFLICT (tenant_id, name, version) DO UPDATE SET deleted_at = $4',
    [tenantId, name, version, now.toISOString()],
  );
}

/** Delete one version (in a transaction): its tombstone, the image's when it was the last, and then its tags. */
export async function deleteImageVersion(
  db: SqlExecutor,
  tenantId: string,
  name: string,
  version: number,
): Promise<void> {
  const now = new Date();
  await db.run('DELETE FROM image_tombstones WHERE deleted_at < $1', [
    new Date(now.getTime() - TOMBSTONE_MS).toISOString(),
  ]);
  await db.run('DELETE FROM image_versions WHERE tenant_id = $1 AND name = $2 AND version = $3', [
    tenantId,
    name,
    version,
  ]);
  await tombstone(db, tenantId, name, version, now);
  const [left] = await db.query('SELECT COUNT(*) AS n FROM image_versions WHERE tenant_id = $1 AND name = $2', [
    tenantId,
    name,
  ]);
  if (Number(left.n) === 0) await tombstone(db, tenantId, name, WHOLE_IMAGE, now);
  await dropTagsOfGoneImage(db, tenantId, name);
}

export async function isImageTombstoned(
  db: SqlExecutor,
  tenantId: string,
  name: string,
  version: number,
): Promise<boolean> {
  const since = new Date(Date.now() - TOMBSTONE_MS).toISOString();
  const rows = await db.query(
    'SELECT 1 FROM image_tombstones WHERE tenant_id = $1 AND name = $2 AND version = $3 AND deleted_at >= $4',
    [tenantId, name, version, since],
  );
  return rows.length > 0;
}

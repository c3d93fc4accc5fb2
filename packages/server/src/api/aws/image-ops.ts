// The read side of images in the AWS API: GetMicrovmImage, ListMicrovmImages, GetMicrovmImageVersion and
// ListMicrovmImageVersions over Capsule's image versions. An image's AWS state is derived from its newest
// version (the first: CREATING/CREATED/CREATE_FAILED; a later one: UPDATING/UPDATED/UPDATE_FAILED); the latest
// active version is the newest successful one whose status is ACTIVE; the base image is the runtime, managed.
// A version made through the AWS API echoes its whole ImageConfig.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { defaultVersionOf, type ImageService } from '../../images/image-service.js';
import type { ImageVersionRecord, Store } from '../../store/types.js';
import { page } from './page.js';
import { accountIdOf, bareIdentifier, epochSeconds, imageArn, type AwsCaller } from './wire.js';

const BUSY = new Set(['PENDING', 'IN_PROGRESS']);

function imageState(newest: ImageVersionRecord): string {
  const [busy, done, failed] =
    newest.version === 1 ? ['CREATING', 'CREATED', 'CREATE_FAILED'] : ['UPDATING', 'UPDATED', 'UPDATE_FAILED'];
  return BUSY.has(newest.state) ? busy : newest.state === 'SUCCESSFUL' ? done : failed;
}

export function imageSummary(caller: AwsCaller, versions: ImageVersionRecord[]): Record<string, unknown> {
  const sorted = [...versions].sort((a, b) => a.version - b.version);
  const newest = sorted[sorted.length - 1];
  const active = defaultVersionOf(sorted)?.version;
  const failed = sorted.filter((v) => v.state === 'FAILED').pop()?.version;
  return {
    imageArn: imageArn(caller.region, accountIdOf(caller.tenantId), newest.name),
    name: newest.name,
    state: imageState(newest),
    createdAt: epochSeconds(sorted[0].createdAt),
    updatedAt: epochSeconds(newest.updatedAt),
    ...(active !== undefined ? { latestActiveImageVersion: String(active) } : {}),
    ...(failed !== undefined ? { latestFailedImageVersion: String(failed) } : {}),
  };
}

/** A build's failure as one line of reason: the step, then what went wrong. */
export function stateReasonOf(v: ImageVersionRecord): string | undefined {
  return v.failureReason ? `${v.failedStep ? `${v.failedStep}: ` : ''}${v.failureReason}` : undefined;
}

/** The ImageConfig a version was made with: the AWS API's own, or what a Capsule image amounts to. */
export function configOf(caller: AwsCaller, v: ImageVersionRecord): Record<string, unknown> {
  return v.awsConfig ?? { baseImageArn: imageArn(caller.region, 'aws', v.runtime), codeArtifact: { uri: v.source } };
}

function versionFull(caller: AwsCaller, v: ImageVersionRecord): Record<string, unknown> {
  const reason = stateReasonOf(v);
  return {
    ...configOf(caller, v),
    imageArn: imageArn(caller.region, accountIdOf(caller.tenantId), v.name),
    imageVersion: String(v.version),
    state: v.state,
    status: v.status,
    createdAt: epochSeconds(v.createdAt),
    updatedAt: epochSeconds(v.updatedAt),
    ...(reason ? { stateReason: reason } : {}),
  };
}

/** "3" or "3.0" → 3; anything else is a version no image has. */
export function versionNumber(raw: string): number {
  const match = /^(\d{1,9})(\.0)?$/.exec(raw);
  if (!match) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `imageVersion must be a number such as "3"`);
  return Number(match[1]);
}

export async function getImage(
  images: ImageService,
  store: Store,
  caller: AwsCaller,
  identifier: string,
): Promise<unknown> {
  const name = bareIdentifier(identifier);
  const summary = imageSummary(caller, await images.versions(caller.tenantId, name));
  const tags = await store.listImageTags(caller.tenantId, name);
  return Object.keys(tags).length > 0 ? { ...summary, tags } : summary;
}

export async function listImages(images: ImageService, caller: AwsCaller, query: URLSearchParams): Promise<unknown> {
  const byName = await images.byName(caller.tenantId);
  const filter = query.get('nameFilter');
  const names = [...byName.keys()].filter((n) => filter === null || n.includes(filter));
  const { items, nextToken } = page(names, (n) => n, query);
  return { items: items.map((n) => imageSummary(caller, byName.get(n)!)), ...(nextToken ? { nextToken } : {}) };
}

export async function getImageVersion(
  images: ImageService,
  caller: AwsCaller,
  identifier: string,
  version: string,
): Promise<Record<string, unknown>> {
  return versionFull(caller, await images.version(caller.tenantId, bareIdentifier(identifier), versionNumber(version)));
}

export async function listImageVersions(
  images: ImageService,
  caller: AwsCaller,
  identifier: string,
  query: URLSearchParams,
): Promise<unknown> {
  const versions = await images.versions(caller.tenantId, bareIdentifier(identifier));
  const { items, nextToken } = page(versions, (v) => String(v.version).padStart(10, '0'), query);
  return { items: items.map((v) => versionFull(caller, v)), ...(nextToken ? { nextToken } : {}) };
}

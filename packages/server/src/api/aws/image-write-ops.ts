// The write side of images in the AWS API: CreateMicrovmImage (201, version "1"), UpdateMicrovmImage (a new
// version with the whole configuration again: PUT semantics), UpdateMicrovmImageVersion (ACTIVE/INACTIVE), and
// DeleteMicrovmImage / DeleteMicrovmImageVersion, idempotent through the store's tombstones: deleting what was
// deleted in the last 8 hours answers DELETED, what never was is ResourceNotFoundException. The zip comes from
// `codeArtifact.uri` (s3://) as POST /v1/images' codeUri does, and builds the same way in the background.
import { z } from 'zod';
import { CapsuleError, ErrorCode, IMAGE_NAME, IMAGE_NAME_RULE } from '@capsule/protocol';
import { withCodeZip, type CodeSources } from '../../images/code-source.js';
import type { ImageService } from '../../images/image-service.js';
import type { ImageVersionRecord, Store } from '../../store/types.js';
import { idempotent } from './idempotency.js';
import { adjustPlan, ClientToken, ImageConfig, runtimeOfBase, Tags } from './image-config.js';
import { configOf, getImageVersion, imageSummary, versionNumber } from './image-ops.js';
import { AwsAnswer, bareIdentifier, validated, type AwsCaller } from './wire.js';

export interface ImageWriteDeps {
  images: ImageService;
  store: Store;
  codeSources: CodeSources;
}

const CreateInput = ImageConfig.extend({
  name: z.string().regex(IMAGE_NAME, IMAGE_NAME_RULE),
  tags: Tags.optional(),
  clientToken: ClientToken,
});
const UpdateInput = ImageConfig.extend({ clientToken: ClientToken });
const UpdateVersionInput = z.object({ status: z.enum(['ACTIVE', 'INACTIVE']) });

/** A new version of `name` built from the configuration's zip; the version's number. */
async function buildVersion(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  name: string,
  config: ImageConfig,
): Promise<number> {
  const uri = config.codeArtifact.uri;
  const record = await withCodeZip(deps.codeSources, uri, (zip) =>
    deps.images.create(caller.tenantId, name, zip, uri, {
      baseRuntime: runtimeOfBase(config.baseImageArn),
      adjustPlan: adjustPlan(config),
      awsConfig: config,
    }),
  );
  return record.version;
}

/** ImageFull: the image's summary, the version's configuration and number (and the tags, on create). */
async function imageFull(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  name: string,
  version: number,
  withTags: boolean,
): Promise<Record<string, unknown>> {
  const versions = await deps.images.versions(caller.tenantId, name);
  const made = versions.find((v) => v.version === version);
  if (!made) throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image ${name} version ${version} not found`);
  const tags = withTags ? await deps.store.listImageTags(caller.tenantId, name) : {};
  return {
    ...configOf(caller, made),
    ...imageSummary(caller, versions),
    imageVersion: String(version),
    ...(Object.keys(tags).length > 0 ? { tags } : {}),
  };
}

/** The resource id an idempotency token keeps: `name/version`. */
const resourceIdOf = (name: string, version: number): string => `${name}/${version}`;
const versionOfResource = (resourceId: string): number => Number(resourceId.slice(resourceId.lastIndexOf('/') + 1));

export async function createImage(deps: ImageWriteDeps, caller: AwsCaller, body: unknown): Promise<AwsAnswer> {
  const { name, tags, clientToken, ...config } = validated(CreateInput, body, 'body');
  const answer = await idempotent(
    deps.store,
    { tenantId: caller.tenantId, operation: 'CreateMicrovmImage', clientToken },
    { name, tags, config },
    async () => {
      if ((await deps.store.listImageVersions(caller.tenantId, name)).length > 0)
        throw new CapsuleError(
          ErrorCode.ALREADY_EXISTS,
          `image ${name} already exists; UpdateMicrovmImage makes a new version`,
          {
            details: { resourceType: 'MicrovmImage', resourceId: name },
          },
        );
      const version = await buildVersion(deps, caller, name, config);
      if (tags) await deps.store.setImageTags(caller.tenantId, name, tags);
      return resourceIdOf(name, version);
    },
    (resourceId) => imageFull(deps, caller, name, versionOfResource(resourceId), true),
  );
  return new AwsAnswer(201, answer);
}

export async function updateImage(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  identifier: string,
  body: unknown,
): Promise<unknown> {
  const name = bareIdentifier(identifier);
  const { clientToken, ...config } = validated(UpdateInput, body, 'body');
  return idempotent(
    deps.store,
    { tenantId: caller.tenantId, operation: 'UpdateMicrovmImage', clientToken },
    { name, config },
    async () => {
      await deps.images.versions(caller.tenantId, name); // not found: 404 before anything is fetched
      return resourceIdOf(name, await buildVersion(deps, caller, name, config));
    },
    (resourceId) => imageFull(deps, caller, name, versionOfResource(resourceId), false),
  );
}

export async function updateImageVersion(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  identifier: string,
  rawVersion: string,
  body: unknown,
): Promise<unknown> {
  const { status } = validated(UpdateVersionInput, body, 'body');
  const name = bareIdentifier(identifier);
  const version = versionNumber(rawVersion);
  await deps.images.version(caller.tenantId, name, version);
  await deps.store.updateImageVersion(caller.tenantId, name, version, { status });
  return getImageVersion(deps.images, caller, identifier, rawVersion);
}

/** Delete what exists; what was deleted in the last 8 hours answers DELETED again; what never was is 404. */
async function deleteOnce(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  name: string,
  version: number | undefined,
  live: ImageVersionRecord[],
): Promise<void> {
  if (live.length > 0) return deps.images.remove(caller.tenantId, name, version);
  if (await deps.store.isImageTombstoned(caller.tenantId, name, version ?? 0)) return;
  const what = version === undefined ? `image ${name}` : `image ${name} version ${version}`;
  throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `${what} not found`, {
    details: { resourceType: version === undefined ? 'MicrovmImage' : 'MicrovmImageVersion', resourceId: name },
  });
}

export async function deleteImage(deps: ImageWriteDeps, caller: AwsCaller, identifier: string): Promise<unknown> {
  const name = bareIdentifier(identifier);
  await deleteOnce(deps, caller, name, undefined, await deps.store.listImageVersions(caller.tenantId, name));
  return { imageIdentifier: identifier, state: 'DELETED' };
}

export async function deleteImageVersion(
  deps: ImageWriteDeps,
  caller: AwsCaller,
  identifier: string,
  rawVersion: string,
): Promise<unknown> {
  const name = bareIdentifier(identifier);
  const version = versionNumber(rawVersion);
  const live = await deps.store.getImageVersion(caller.tenantId, name, version);
  await deleteOnce(deps, caller, name, version, live ? [live] : []);
  return { imageIdentifier: identifier, imageVersion: rawVersion, state: 'DELETED' };
}

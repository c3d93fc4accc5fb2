// TagResource, UntagResource and ListTags (`/2017-03-31/tags/{Resource}`): tags on a tenant's MicroVM images,
// named by ARN. MicroVMs are not taggable (as in AWS): any other ARN is ValidationException; an image of
// another account (tenant), or none, is ResourceNotFoundException.
import { z } from 'zod';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { ImageService } from '../../images/image-service.js';
import type { Store } from '../../store/types.js';
import { accountIdOf, AwsAnswer, validated, type AwsCaller } from './wire.js';

/** What an operation answers with 204 and no body. */
export const NO_CONTENT = new AwsAnswer(204, undefined);

const IMAGE_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:(\d{12}):microvm-image:([a-zA-Z0-9_-]{1,64})$/;
const MAX_TAGS = 50;
const TagKey = z.string().min(1).max(128);
const TagResourceInput = z.object({
  Tags: z
    .record(TagKey, z.string().max(256))
    .refine((tags) => Object.keys(tags).length <= MAX_TAGS, `at most ${MAX_TAGS} tags`),
});

/** The image a tag operation's Resource names, which must be the caller's. */
async function imageOf(images: ImageService, caller: AwsCaller, resource: string): Promise<string> {
  const match = IMAGE_ARN.exec(resource);
  if (!match) {
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      'Resource must be a MicroVM image ARN (arn:aws:lambda:REGION:ACCOUNT:microvm-image:NAME); ' +
        'MicroVMs are not taggable',
    );
  }
  const notFound = new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image ${match[2]} not found`, {
    details: { resourceType: 'MicrovmImage', resourceId: resource },
  });
  if (match[1] !== accountIdOf(caller.tenantId)) throw notFound;
  await images.versions(caller.tenantId, match[2]).catch(() => {
    throw notFound;
  });
  return match[2];
}

export async function tagResource(
  store: Store,
  images: ImageService,
  caller: AwsCaller,
  resource: string,
  body: unknown,
): Promise<typeof NO_CONTENT> {
  const { Tags: tags } = validated(TagResourceInput, body, 'body');
  const name = await imageOf(images, caller, resource);
  const merged = { ...(await store.listImageTags(caller.tenantId, name)), ...tags };
  if (Object.keys(merged).length > MAX_TAGS)
    throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `an image has at most ${MAX_TAGS} tags`);
  await store.setImageTags(caller.tenantId, name, tags);
  return NO_CONTENT;
}

export async function untagResource(
  store: Store,
  images: ImageService,
  caller: AwsCaller,
  resource: string,
  query: URLSearchParams,
): Promise<typeof NO_CONTENT> {
  const keys = validated(z.array(TagKey).min(1).max(MAX_TAGS), query.getAll('tagKeys'), 'tagKeys');
  await store.removeImageTags(caller.tenantId, await imageOf(images, caller, resource), keys);
  return NO_CONTENT;
}

export async function listTags(
  store: Store,
  images: ImageService,
  caller: AwsCaller,
  resource: string,
): Promise<unknown> {
  return { Tags: await store.listImageTags(caller.tenantId, await imageOf(images, caller, resource)) };
}

// Managed images: Capsule's built-in runtimes (base, python, node), as AWS lists its own base images. A
// runtime has one version, "1" (its build is the server's: a rebuild replaces it in place), always AVAILABLE.
import { z } from 'zod';
import { CapsuleError, ErrorCode, formatIssues } from '@capsule/protocol';
import type { Runtime } from '../../runtimes/registry.js';
import type { AwsCaller } from './microvm-ops.js';
import { bareIdentifier, epochSeconds, imageArn } from './wire.js';

const MAX_RESULTS = 50;

/** `items` (always present) after `nextToken`, at most `maxResults` of them; the last one's key as the next token. */
function page<T>(all: T[], keyOf: (item: T) => string, query: URLSearchParams): { items: T[]; nextToken?: string } {
  const parsed = z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_RESULTS)
    .optional()
    .safeParse(query.get('maxResults') ?? undefined);
  if (!parsed.success) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, formatIssues(parsed.error, 'maxResults'));
  const limit = parsed.data ?? MAX_RESULTS;
  const after = query.get('nextToken');
  const sorted = [...all].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  const rest = after === null ? sorted : sorted.filter((item) => keyOf(item) > after);
  const items = rest.slice(0, limit);
  return rest.length > limit ? { items, nextToken: keyOf(items[items.length - 1]) } : { items };
}

export function listManagedImages(runtimes: Runtime[], caller: AwsCaller, query: URLSearchParams): unknown {
  const { items, nextToken } = page(runtimes, (r) => r.name, query);
  return {
    items: items.map((r) => ({
      imageArn: imageArn(caller.region, 'aws', r.name),
      createdAt: epochSeconds(r.builtAt),
      updatedAt: epochSeconds(r.builtAt),
    })),
    ...(nextToken ? { nextToken } : {}),
  };
}

export function listManagedImageVersions(
  runtimes: Runtime[],
  caller: AwsCaller,
  identifier: string,
  query: URLSearchParams,
): unknown {
  const name = bareIdentifier(identifier);
  const runtime = runtimes.find((r) => r.name === name);
  if (!runtime) {
    throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `managed image ${JSON.stringify(name.slice(0, 64))} not found`, {
      details: { resourceType: 'ManagedMicrovmImage', resourceId: identifier.slice(0, 256) },
    });
  }
  const version = {
    imageArn: imageArn(caller.region, 'aws', runtime.name),
    imageVersion: '1',
    createdAt: epochSeconds(runtime.builtAt),
    updatedAt: epochSeconds(runtime.builtAt),
    status: 'AVAILABLE',
  };
  const { items, nextToken } = page([version], (v) => v.imageVersion, query);
  return { items, ...(nextToken ? { nextToken } : {}) };
}

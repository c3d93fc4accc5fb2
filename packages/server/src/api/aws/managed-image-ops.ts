// Managed images: Capsule's built-in runtimes (base, python, node), as AWS lists its own base images. A
// runtime has one version, "1" (its build is the server's: a rebuild replaces it in place), always AVAILABLE.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Runtime } from '../../runtimes/registry.js';
import { page } from './page.js';
import { bareIdentifier, epochSeconds, imageArn, type AwsCaller } from './wire.js';

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

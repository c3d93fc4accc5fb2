// What a MicroVM boots from: a runtime (built-in image) or a built version of a tenant's image (a
// frozen layer over its runtime, and usually an app-ready snapshot). Starting the app is images/app-start.ts.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { ImageService, LaunchableImage } from '../images/image-service.js';
import type { Runtime, RuntimeRegistry } from '../runtimes/registry.js';

export interface LaunchSource {
  runtime: Runtime;
  image: LaunchableImage | null;
}

/** What a launch source is found in: the runtimes, and the tenants' images (null: none). */
export interface LaunchSourceDeps {
  runtimes: Pick<RuntimeRegistry, 'list' | 'get'>;
  images: Pick<ImageService, 'launchable'> | null;
}

export async function resolveSource(
  runtimes: LaunchSourceDeps['runtimes'],
  images: LaunchSourceDeps['images'],
  tenantId: string,
  imageName: string,
  imageVersion?: number,
): Promise<LaunchSource> {
  if (imageVersion === undefined && runtimes.list().some((r) => r.name === imageName))
    return { runtime: runtimes.get(imageName), image: null };
  if (!images) throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `no runtime or image named ${imageName}`);
  const image = await images.launchable(tenantId, imageName, imageVersion);
  return { runtime: runtimes.get(image.record.runtime), image };
}

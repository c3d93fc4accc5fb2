// What this host has ready for a launch, told with its lease so placement prefers it (placement.ts): the targets
// its warm pool holds clones of (`warm:<key>`), and the images whose app snapshot is in its blob cache, the local
// copies of an S3 blob store's objects (`cached:<tenant>/<image>`): any other host would download it first.
import fs from 'node:fs';
import path from 'node:path';
import { cachedFor, warmFor } from './placement.js';

/** `<tenant>/<image>` of each image version whose app snapshot memory is under `blobCacheDir`. */
function cachedImages(blobCacheDir: string): string[] {
  const keys = new Set<string>();
  const dirs = (dir: string): string[] => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return []; // none cached (or no blob cache: a local blob store)
    }
  };
  const root = path.join(blobCacheDir, 'images');
  for (const tenant of dirs(root))
    for (const image of dirs(path.join(root, tenant)))
      for (const version of dirs(path.join(root, tenant, image)))
        if (fs.existsSync(path.join(root, tenant, image, version, 'snapshot', 'memory')))
          keys.add(`${tenant}/${image}`);
  return [...keys];
}

export function launchReadiness(warmKeys: readonly string[], blobCacheDir: string): string[] {
  return [...warmKeys.map(warmFor), ...cachedImages(blobCacheDir).map(cachedFor)];
}

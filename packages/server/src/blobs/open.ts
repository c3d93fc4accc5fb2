// Which blob store: a directory in the data dir (default), or an S3-compatible bucket
// (CAPSULE_BLOBS=s3://bucket/prefix, with the CAPSULE_S3_* endpoint and credentials).
import path from 'node:path';
import type { CapsuleConfig } from '../config.js';
import { LocalBlobStore, type BlobStore } from './blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

export function openBlobStore(config: Pick<CapsuleConfig, 'blobs' | 's3' | 'dataDir'>): BlobStore {
  if (!config.blobs) return new LocalBlobStore(path.join(config.dataDir, 'blobs'));
  const target = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*?))?\/?$/.exec(config.blobs);
  if (!target || !config.s3)
    throw new Error(`CAPSULE_BLOBS=${config.blobs}: needs s3://bucket[/prefix] and the CAPSULE_S3_* settings`);
  return new S3BlobStore(config.s3, target[1], target[2] ?? '', blobCacheDir(config.dataDir));
}

/** Where an S3 blob store keeps local copies of the objects a host needs as files. */
export function blobCacheDir(dataDir: string): string {
  return path.join(dataDir, 'blob-cache');
}

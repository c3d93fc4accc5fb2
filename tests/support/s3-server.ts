// A real S3-compatible server for tests: s3rver on a free loopback port, its buckets in a temporary directory
// that close() removes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { S3Config } from '@capsule/server/internals';

export interface TestS3 {
  /** Path-style access with s3rver's own credentials. */
  config: S3Config;
  close(): Promise<void>;
}

/** `address`: where it listens (loopback unless a test's network namespaces must reach it). */
export async function startS3(buckets: string[], address = '127.0.0.1'): Promise<TestS3> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-test-s3-'));
  const server = new S3rver({
    port: 0,
    address,
    directory,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const { address: listening, port } = await server.run();
  return {
    config: {
      endpoint: `http://${listening}:${port}`,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    },
    async close() {
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

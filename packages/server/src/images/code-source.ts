// Where a tenant's zip may come from besides an upload: an `s3://bucket/key` on the configured S3-compatible
// storage, under a prefix the operator opened (CAPSULE_S3_CODE_PREFIXES), never Capsule's own blob storage. Used
// by POST /v1/images ({codeUri}) and the AWS API's CreateMicrovmImage ({codeArtifact: {uri}}).
import type { Readable } from 'node:stream';
import type { CapsuleConfig } from '../config.js';
import { Transform } from 'node:stream';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { BlobAccessError, BlobNotFoundError } from '../blobs/blob-store.js';
import { getObject, parseS3Uri, s3Client, type S3Config } from '../blobs/s3-blob-store.js';

export const MAX_ZIP_BYTES = 1 << 30;

export interface CodeSources {
  /** The S3-compatible storage code is read from; null: uploads only. */
  s3: S3Config | null;
  /** The only places a codeUri may name (s3://bucket or s3://bucket/prefix/). */
  codePrefixes: string[];
  /** Capsule's own blob storage (CAPSULE_BLOBS), never a code source. */
  blobs: string | null;
}

/** Fails the stream once more than `limit` bytes went through (the upload is then discarded). */
export function capped(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _e, callback) {
      seen += chunk.length;
      callback(
        seen > limit ? new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `the zip is larger than ${limit} bytes`) : null,
        chunk,
      );
    },
  });
}

/** Under "s3://b" or "s3://b/p/" (a prefix is a whole path segment: "s3://b/p" does not admit "s3://b/pq/x"). */
function under(uri: string, prefix: string): boolean {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return uri.startsWith(base);
}

function checkCodeUri(codeUri: string, allowed: string[], blobs: string | null): void {
  if (blobs?.startsWith('s3://') && under(codeUri, blobs))
    throw new CapsuleError(ErrorCode.FORBIDDEN, `codeUri ${codeUri}: Capsule's own storage is not a code source`);
  if (!allowed.some((prefix) => under(codeUri, prefix))) {
    const where = allowed.length > 0 ? `under ${allowed.join(', ')}` : 'nowhere: this server takes uploaded zips only';
    throw new CapsuleError(
      ErrorCode.FORBIDDEN,
      `codeUri ${codeUri}: code may come from ${where} (CAPSULE_S3_CODE_PREFIXES)`,
    );
  }
}

/** `use` the zip at `codeUri` as a stream (capped at MAX_ZIP_BYTES); a missing or unreadable object is a 400. */
export async function withCodeZip<T>(
  sources: CodeSources,
  codeUri: string,
  use: (zip: Readable) => Promise<T>,
): Promise<T> {
  if (!sources.s3)
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      'codeUri needs S3-compatible storage, and this server has none configured (CAPSULE_S3_ENDPOINT…)',
    );
  const location = parseS3Uri(codeUri);
  if (!location) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `codeUri ${codeUri}: must be s3://bucket/key`);
  checkCodeUri(codeUri, sources.codePrefixes, sources.blobs);
  const client = s3Client(sources.s3);
  try {
    const body = await getObject(client, location.bucket, location.key);
    return await use(body.pipe(capped(MAX_ZIP_BYTES)));
  } catch (err) {
    if (err instanceof BlobNotFoundError)
      throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `codeUri ${codeUri}: no such object`);
    if (err instanceof BlobAccessError)
      throw new CapsuleError(ErrorCode.BAD_REQUEST, `codeUri ${codeUri}: ${err.message}`);
    throw err;
  } finally {
    client.destroy();
  }
}

export function codeSourcesOf(config: Pick<CapsuleConfig, 's3' | 's3CodePrefixes' | 'blobs'>): CodeSources {
  return { s3: config.s3, codePrefixes: config.s3CodePrefixes, blobs: config.blobs };
}

// Blobs in an S3-compatible bucket (AWS S3, MinIO, s3rver…) through @aws-sdk/client-s3, and reading
// an app's `s3://bucket/key` code URI with the same endpoint and credentials.
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  BlobAccessError,
  type BlobListing,
  BlobNotFoundError,
  type BlobStore,
  checkKey,
  type Gzipped,
  gzipStream,
  filesUnder,
  writeFileAtomically,
} from './blob-store.js';

export interface S3Config {
  /** e.g. http://127.0.0.1:4569; null: AWS's own endpoint for the region. */
  endpoint: string | null;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style addressing (most self-hosted servers need it). */
  forcePathStyle: boolean;
}

export function s3Client(config: S3Config): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint ?? undefined,
    forcePathStyle: config.forcePathStyle,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    maxAttempts: 2,
  });
}

/** S3's refusal as one of ours: a missing object, or access trouble named plainly. */
function translate(err: unknown, bucket: string, key: string): Error {
  if (err instanceof S3ServiceException) {
    const code = err.name;
    if (code === 'NoSuchKey' || code === 'NotFound' || err.$metadata?.httpStatusCode === 404) {
      return code === 'NoSuchBucket'
        ? new BlobAccessError(`s3://${bucket} does not exist`)
        : new BlobNotFoundError(key, `s3://${bucket}`);
    }
    if (
      ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(code) ||
      err.$metadata?.httpStatusCode === 403
    ) {
      return new BlobAccessError(`s3://${bucket}/${key}: access refused (${code}): check the S3 credentials`, {
        cause: err,
      });
    }
    return new BlobAccessError(`s3://${bucket}/${key}: ${code}: ${err.message}`, { cause: err });
  }
  return new BlobAccessError(`s3://${bucket}/${key}: ${(err as Error).message}`, { cause: err });
}

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;

  /**
   * `cacheDir`: where objects needed as files are kept locally (uploads leave their file there).
   * Downloaded files are root's and read-only for all: a jailed QEMU opens a layer or snapshot file
   * through a read-only bind mount with its own uid.
   */
  constructor(
    config: S3Config,
    private readonly bucket: string,
    private readonly prefix = '',
    private readonly cacheDir = '',
  ) {
    this.client = s3Client(config);
  }

  private cached(key: string): string {
    if (!this.cacheDir) throw new Error('this S3 blob store has no local cache directory');
    return path.join(this.cacheDir, checkKey(key));
  }

  async putFile(key: string, file: string, opts: { gzipped?: boolean } = {}): Promise<void> {
    const body = opts.gzipped ? gzipStream(file) : null;
    // error-listener: lib-storage's Upload reads it with for-await, so a read error rejects the upload
    await this.put(body ? `${key}.gz` : key, body ?? fs.createReadStream(file));
    const local = this.cached(key);
    fs.mkdirSync(path.dirname(local), { recursive: true, mode: 0o711 });
    fs.renameSync(file, local);
  }

  seedLocalFile(key: string, file: string): void {
    if (!this.cacheDir) return;
    const local = this.cached(key);
    if (fs.existsSync(local)) return;
    fs.mkdirSync(path.dirname(local), { recursive: true, mode: 0o711 });
    try {
      fs.linkSync(file, local);
    } catch (err) {
      // another filesystem, or seeded meanwhile: a later localFile downloads it as usual
      if (!['EXDEV', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }

  async localFile(key: string, opts: { gzipped?: Gzipped } = {}): Promise<string> {
    const local = this.cached(key);
    if (fs.existsSync(local)) return local;
    const gzipped = opts.gzipped === 'if-stored' ? (await this.head(`${key}.gz`)) !== null : (opts.gzipped ?? false);
    await writeFileAtomically(local, await this.get(gzipped ? `${key}.gz` : key), { mode: 0o444, gunzip: gzipped });
    return local;
  }

  get location(): string {
    return `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
  }

  private key(key: string): string {
    return this.prefix ? `${this.prefix}/${checkKey(key)}` : checkKey(key);
  }

  async put(key: string, body: Readable | Buffer): Promise<{ sizeBytes: number }> {
    let sizeBytes = 0;
    const counted = Buffer.isBuffer(body)
      ? ((sizeBytes = body.length), body)
      : body.on('data', (c: Buffer) => (sizeBytes += c.length));
    try {
      // multipart for large objects; an upload that fails is aborted, leaving no object
      await new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.key(key), Body: counted },
      }).done();
    } catch (err) {
      throw translate(err, this.bucket, this.key(key));
    }
    return { sizeBytes };
  }

  async get(key: string): Promise<Readable> {
    return getObject(this.client, this.bucket, this.key(key));
  }

  async head(key: string): Promise<{ sizeBytes: number } | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return { sizeBytes: head.ContentLength ?? 0 };
    } catch (err) {
      const translated = translate(err, this.bucket, this.key(key));
      if (translated instanceof BlobNotFoundError) return null;
      throw translated;
    }
  }

  async delete(key: string): Promise<void> {
    if (this.cacheDir) fs.rmSync(this.cached(key), { force: true });
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
    } catch (err) {
      throw translate(err, this.bucket, this.key(key));
    }
  }

  async usageBytes(prefix: string): Promise<number> {
    return (await this.list(prefix)).reduce((sum, object) => sum + object.sizeBytes, 0);
  }

  async list(prefix: string): Promise<BlobListing[]> {
    const listed: BlobListing[] = [];
    const ours = this.prefix ? `${this.prefix}/` : '';
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.key(prefix)}/`, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? [])
          listed.push({
            key: (object.Key ?? '').slice(ours.length),
            sizeBytes: object.Size ?? 0,
            modifiedAtMs: object.LastModified?.getTime() ?? 0,
          });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw translate(err, this.bucket, this.key(prefix));
    }
    return listed;
  }

  localCopies(prefix: string): string[] {
    return this.cacheDir ? filesUnder(this.cacheDir, prefix).map((f) => f.key) : [];
  }

  forgetLocal(key: string): void {
    if (this.cacheDir) fs.rmSync(this.cached(key), { force: true });
  }

  destroy(): void {
    this.client.destroy();
  }
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Readable> {
  try {
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return object.Body as Readable;
  } catch (err) {
    throw translate(err, bucket, key);
  }
}

/** `s3://bucket/key/with/slashes` → its parts; null if it is not one. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | null {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  return match ? { bucket: match[1], key: match[2] } : null;
}

// One blob interface for zips, build outputs and snapshots: a local directory by default, or an
// S3-compatible bucket. Keys are relative paths of [A-Za-z0-9._-] segments; a write is atomic (the
// object appears whole or not at all).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, pipeline as streamPipeline } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { allocatedBytes } from '../allocated-bytes.js';
import { fsyncPath } from '../durable.js';
import { createGunzip, createGzip } from 'node:zlib';
import { sparseWriteStream } from './sparse-write.js';

export class BlobNotFoundError extends Error {
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(`${where}: no object ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/** S3 refused us (credentials, permissions, a missing bucket): the message says which. */
export class BlobAccessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobAccessError';
  }
}

/**
 * Stream `source` into `target` so it appears whole or not at all: a temp file beside it (0600, then
 * `mode`), renamed into place; `durable` fsyncs the file and its directory first. `gunzip`: `source` is gzip;
 * its bytes are written, zero blocks as holes (sparse-write.ts).
 */
export async function writeFileAtomically(
  target: string,
  source: Readable,
  opts: { durable?: boolean; mode?: number; gunzip?: boolean } = {},
): Promise<void> {
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o711 });
  const partial = `${target}.${randomBytes(6).toString('hex')}.partial`;
  try {
    if (opts.gunzip) await pipeline(source, createGunzip(), sparseWriteStream(partial, 0o600));
    else await pipeline(source, fs.createWriteStream(partial, { mode: 0o600 }));
    if (opts.mode !== undefined) fs.chmodSync(partial, opts.mode);
    if (opts.durable) fsyncPath(partial);
    fs.renameSync(partial, target);
    if (opts.durable) fsyncPath(path.dirname(target));
  } finally {
    fs.rmSync(partial, { force: true });
  }
}

export interface BlobStore {
  /** Where objects live, for messages ("s3://bucket", "/var/lib/capsule/blobs"). */
  readonly location: string;
  put(key: string, body: Readable | Buffer): Promise<{ sizeBytes: number }>;
  get(key: string): Promise<Readable>;
  /** Size of an object, or null if there is none. */
  head(key: string): Promise<{ sizeBytes: number } | null>;
  delete(key: string): Promise<void>;
  /**
   * Move a local file in as `key` (local: a rename; S3: an upload, the file kept as the local copy). `gzipped`: S3
   * keeps it as `<key>.gz` (a memory image: mostly zeros); `localFile` with `gzipped` gives it back.
   */
  putFile(key: string, file: string, opts?: { gzipped?: boolean }): Promise<void>;
  /**
   * A local path with `key`'s bytes, for what needs a file (QEMU): the object itself, or a cached download.
   * `gzipped`: the object may be `<key>.gz` (`if-stored`: if there is one, else `key`, as stored before), and the
   * local file its bytes with zero blocks as holes.
   */
  localFile(key: string, opts?: { gzipped?: Gzipped }): Promise<string>;
  /**
   * `file` holds `key`'s bytes (it was just uploaded from it): `localFile` may answer with a hard link to it instead of
   * downloading them (S3; nothing to do for a local store, or across filesystems).
   */
  seedLocalFile(key: string, file: string): void;
  /** Bytes held by every object under `prefix` (a tenant's artifacts, for its storage quota). */
  usageBytes(prefix: string): Promise<number>;
  /** Every object under `prefix/`, with its size and when it was written. */
  list(prefix: string): Promise<BlobListing[]>;
  /** Keys under `prefix/` this server keeps a local copy of (an S3 store's cache; a local store has none). */
  localCopies(prefix: string): string[];
  /** Drop this server's local copy of `key`; the object stays. */
  forgetLocal(key: string): void;
}

/** `file` read gzipped (level 1: fast, and zeros shrink as much as at any level); a read error fails the stream. */
export function gzipStream(file: string): Readable {
  // error-listener: the pipeline destroys the gzip stream with the read error, which fails whoever reads it
  return streamPipeline(fs.createReadStream(file), createGzip({ level: 1 }), () => undefined);
}

/** Whether an object is stored gzipped as `<key>.gz`: yes, no, or whichever is there. */
export type Gzipped = boolean | 'if-stored';

export interface BlobListing {
  key: string;
  sizeBytes: number;
  modifiedAtMs: number;
}

/** Keys of the files under `dir`/`prefix`, relative to `dir`; files being written (`.partial`) left out. */
export function filesUnder(dir: string, prefix: string): Array<{ key: string; stat: fs.Stats }> {
  const found: Array<{ key: string; stat: fs.Stats }> = [];
  const walk = (relative: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, relative));
    } catch {
      return; // none there
    }
    for (const name of names) {
      const key = `${relative}/${name}`;
      const stat = fs.lstatSync(path.join(dir, key), { throwIfNoEntry: false });
      if (stat?.isDirectory()) walk(key);
      else if (stat?.isFile() && !name.endsWith('.partial')) found.push({ key, stat });
    }
  };
  walk(checkKey(prefix));
  return found;
}

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function checkKey(key: string): string {
  if (!KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..') || key.length > 1024)
    throw new Error(`invalid blob key ${JSON.stringify(key.slice(0, 100))}`);
  return key;
}

export class LocalBlobStore implements BlobStore {
  // 0711: QEMU's unprivileged user reaches image layers and snapshots by path; nobody may list them
  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  }

  get location(): string {
    return this.dir;
  }

  private file(key: string): string {
    return path.join(this.dir, checkKey(key));
  }

  async put(key: string, body: Readable | Buffer): Promise<{ sizeBytes: number }> {
    const target = this.file(key);
    await writeFileAtomically(target, Buffer.isBuffer(body) ? Readable.from([body]) : body, { durable: true });
    return { sizeBytes: fs.statSync(target).size };
  }

  async get(key: string): Promise<Readable> {
    const file = this.file(key);
    if (!fs.existsSync(file)) throw new BlobNotFoundError(key, this.dir);
    return fs.createReadStream(file);
  }

  async head(key: string): Promise<{ sizeBytes: number } | null> {
    try {
      return { sizeBytes: fs.statSync(this.file(key)).size };
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    fs.rmSync(this.file(key), { force: true });
  }

  async putFile(key: string, file: string): Promise<void> {
    const target = this.file(key);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o711 });
    fsyncPath(file);
    fs.renameSync(file, target); // same filesystem as the data dir: no copy, modes and owner kept
    fsyncPath(path.dirname(target));
  }

  async localFile(key: string, opts: { gzipped?: Gzipped } = {}): Promise<string> {
    const file = this.file(key);
    // a gzipped object's bytes are kept beside it, as the object `key` (putFile keeps none gzipped here)
    if (opts.gzipped && !fs.existsSync(file) && fs.existsSync(this.file(`${key}.gz`)))
      await writeFileAtomically(file, await this.get(`${key}.gz`), { mode: 0o444, gunzip: true });
    if (!fs.existsSync(file)) throw new BlobNotFoundError(key, this.dir);
    return file;
  }

  seedLocalFile(): void {
    // the object is a local file already
  }

  usageBytes(prefix: string): Promise<number> {
    return allocatedBytes(this.file(prefix));
  }

  async list(prefix: string): Promise<BlobListing[]> {
    return filesUnder(this.dir, prefix).map(({ key, stat }) => ({
      key,
      sizeBytes: stat.size,
      modifiedAtMs: stat.mtimeMs,
    }));
  }

  localCopies(): string[] {
    return []; // the objects are local files themselves
  }

  forgetLocal(): void {
    // the object is the local file
  }
}

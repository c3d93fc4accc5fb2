// Reading an app's zip safely. Everything is checked from the central directory before a byte is
// extracted: entry count, total expanded size (a zip bomb declares — and yauzl then enforces — its
// sizes), no absolute paths, no `..`, no NUL, symlinks only to targets inside the zip. A corrupt zip
// is an error with its reason. Each problem is a ZipError naming the entry.
import path from 'node:path/posix';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';

export interface ZipLimits {
  maxEntries: number;
  maxExpandedBytes: number;
}

const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntries: 10_000, maxExpandedBytes: 1 << 30 };

export interface ZipEntry {
  /** Normalised relative path ('dir/file'); directories have no trailing slash. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (0o644 when the zip did not record them). */
  mode: number;
  sizeBytes: number;
}

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

function open(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(
      file,
      { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false, decodeStrings: false },
      (err, zip) =>
        err || !zip ? reject(new ZipError(`not a readable zip: ${err?.message ?? 'unknown error'}`)) : resolve(zip),
    ),
  );
}

function safePath(raw: string): string {
  if (raw.includes('\0')) throw new ZipError(`entry ${JSON.stringify(raw)} has a NUL in its name`);
  const name = raw.replace(/\\/g, '/');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name))
    throw new ZipError(`entry ${JSON.stringify(raw)} has an absolute path`);
  if (name.split('/').includes('..'))
    throw new ZipError(`entry ${JSON.stringify(raw)} climbs out of the zip with ".."`);
  const normal = path.normalize(name).replace(/\/$/, '');
  if (normal === '.' || normal === '') throw new ZipError(`entry ${JSON.stringify(raw)} has an empty name`);
  return normal;
}

/** An open, validated zip: its entries, and a stream for each file's (or symlink's) content. */
export class AppZip {
  private constructor(
    private readonly zip: yauzl.ZipFile,
    private readonly raw: Map<string, yauzl.Entry>,
    readonly entries: ZipEntry[],
  ) {}

  static async open(file: string, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<AppZip> {
    const zip = await open(file);
    try {
      if (zip.entryCount > limits.maxEntries)
        throw new ZipError(`the zip has ${zip.entryCount} entries; the limit is ${limits.maxEntries}`);
      const entries: ZipEntry[] = [];
      const raw = new Map<string, yauzl.Entry>();
      let expanded = 0;
      await new Promise<void>((resolve, reject) => {
        zip.on('error', (err: Error) =>
          reject(err instanceof ZipError ? err : new ZipError(`corrupt zip: ${err.message}`)),
        );
        zip.on('end', resolve);
        zip.on('entry', (entry: yauzl.Entry) => {
          try {
            // names are checked here (not by yauzl) so every rejection names the entry the same way
            const fileName = (entry.fileName as unknown as Buffer).toString('utf8');
            const unixMode = (entry.externalFileAttributes >>> 16) & 0xffff;
            const isDir = fileName.endsWith('/') || (unixMode & S_IFMT) === S_IFDIR;
            const type = (unixMode & S_IFMT) === S_IFLNK ? 'symlink' : isDir ? 'dir' : 'file';
            const entryPath = safePath(fileName);
            if (raw.has(entryPath)) throw new ZipError(`entry ${entryPath} appears twice`);
            expanded += entry.uncompressedSize;
            if (expanded > limits.maxExpandedBytes)
              throw new ZipError(
                `the zip expands to more than ${limits.maxExpandedBytes} bytes (at entry ${entryPath})`,
              );
            raw.set(entryPath, entry);
            entries.push({
              path: entryPath,
              type,
              mode: unixMode & 0o7777 || (isDir ? 0o755 : 0o644),
              sizeBytes: entry.uncompressedSize,
            });
            zip.readEntry();
          } catch (err) {
            reject(err);
          }
        });
        zip.readEntry();
      });
      const app = new AppZip(zip, raw, entries);
      for (const entry of entries) if (entry.type === 'symlink') await app.checkSymlink(entry);
      return app;
    } catch (err) {
      zip.close();
      throw err;
    }
  }

  /** A symlink's target, resolved against its directory, must stay inside the zip. */
  private async checkSymlink(entry: ZipEntry): Promise<void> {
    if (entry.sizeBytes > 4096) throw new ZipError(`symlink ${entry.path} has a ${entry.sizeBytes}-byte target`);
    const target = (await this.read(entry.path)).toString('utf8');
    const resolved = path.normalize(path.join(path.dirname(entry.path), target));
    if (target.startsWith('/') || resolved === '..' || resolved.startsWith('../'))
      throw new ZipError(`symlink ${entry.path} points outside the zip (${target})`);
  }

  /** The content of one entry as a stream; its size is enforced as declared. */
  stream(entryPath: string): Promise<Readable> {
    const entry = this.raw.get(entryPath);
    if (!entry) return Promise.reject(new ZipError(`no entry ${entryPath}`));
    return new Promise((resolve, reject) =>
      this.zip.openReadStream(entry, (err, stream) =>
        err || !stream ? reject(new ZipError(`cannot read ${entryPath}: ${err?.message}`)) : resolve(stream),
      ),
    );
  }

  /** A small entry whole (build files, symlink targets). */
  async read(entryPath: string, maxBytes = 1 << 20): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of await this.stream(entryPath)) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) throw new ZipError(`${entryPath} is larger than ${maxBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  has(entryPath: string): boolean {
    return this.raw.has(entryPath);
  }

  close(): void {
    this.zip.close();
  }
}

// `capsule image create --dir`: a directory as a zip stream (yazl), made while it is read. The walk
// (names, modes, symlink targets) happens first, so a bad directory fails before anything is sent;
// file contents are read and deflated as the stream is consumed. Unix modes are kept, symlinks stay
// links (mode 0o120777, the target as content), directories are entries of their own.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import yazl from 'yazl';
import { UsageError } from './args.js';

const MAX_DIR_FILES = 10_000;

export interface DirectoryZip {
  /** The zip's bytes, as they are made; it fails (with a UsageError) when a file cannot be read. */
  stream: Readable;
  /** Entries in the zip (files, directories, symlinks). */
  entryCount: number;
  /** Regular files' bytes before compression. */
  fileBytes: number;
}

/** Zips `dir` (sorted by name); `generated` becomes a capsule.json at the end (for an app without a build file). */
export function zipDirectory(dir: string, generated?: object): DirectoryZip {
  const zip = new yazl.ZipFile();
  const stream = new PassThrough();
  // yazl reports a file it cannot stat or read here (it stops writing then)
  zip.on('error', (err: Error) => stream.destroy(new UsageError(`cannot zip ${dir}: ${err.message}`)));
  let entryCount = 0;
  let fileBytes = 0;
  const add = (name: string, adding: () => void): void => {
    try {
      adding();
    } catch (err) {
      throw new UsageError(`cannot zip ${path.join(dir, name)}: ${(err as Error).message}`);
    }
    if (++entryCount > MAX_DIR_FILES) throw new UsageError(`${dir} has more than ${MAX_DIR_FILES} files`);
  };
  const walk = (rel: string): void => {
    for (const entry of fs
      .readdirSync(path.join(dir, rel), { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      const full = path.join(dir, name);
      const stat = fs.lstatSync(full);
      const options = { mode: stat.mode, mtime: stat.mtime };
      if (entry.isSymbolicLink())
        add(name, () => zip.addBuffer(Buffer.from(fs.readlinkSync(full)), name, { ...options, compress: false }));
      else if (entry.isDirectory()) {
        add(name, () => zip.addEmptyDirectory(name, options));
        walk(name);
      } else if (entry.isFile()) {
        add(name, () => zip.addFile(full, name, options));
        fileBytes += stat.size;
      }
    }
  };
  try {
    walk('');
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError(`cannot zip ${dir}: ${(err as Error).message}`);
  }
  if (generated)
    add('capsule.json', () =>
      zip.addBuffer(Buffer.from(JSON.stringify(generated, null, 2)), 'capsule.json', { mode: 0o100644 }),
    );
  zip.end();
  (zip.outputStream as Readable).pipe(stream);
  return { stream, entryCount, fileBytes };
}

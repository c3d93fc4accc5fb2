// Files: read and write stream through the channel with credit; metadata calls answer one message.
// Writes go to a temp file in the same directory, are fsynced and renamed: a reader never sees half a file.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Fd, type Channel, type FileStat, type GuestRequest } from '@capsule/protocol';
import { errnoReply, reply, replyError } from '../reply.js';

type FileRequest = Extract<GuestRequest, { type: `fs.${string}` }>;

async function statOf(filePath: string): Promise<FileStat> {
  const st = await fsp.lstat(filePath);
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  return {
    name: path.basename(filePath),
    path: filePath,
    type,
    sizeBytes: st.size,
    mode: st.mode & 0o7777,
    modifiedAt: st.mtime.toISOString(),
  };
}

export function isFileRequest(request: GuestRequest): request is FileRequest {
  return request.type.startsWith('fs.');
}

export function handleFileRequest(channel: Channel, request: FileRequest, done: () => void): void {
  channel.events.message = (raw) => {
    if ((raw as { type?: unknown })?.type === 'cancel') channel.abort(new Error('cancelled by the host'));
  };
  const run = async (): Promise<void> => {
    switch (request.type) {
      case 'fs.read':
        return readFile(channel, request.path);
      case 'fs.write':
        return writeFile(channel, request.path, request.mode, request.parents ?? false);
      case 'fs.stat':
        return reply(channel, { type: 'result', stat: await statOf(request.path) });
      case 'fs.list': {
        const names = await fsp.readdir(request.path);
        const entries = await Promise.all(
          names.sort().map((name) => statOf(path.join(request.path, name)).catch(() => null)),
        );
        return reply(channel, { type: 'result', entries: entries.filter((e): e is FileStat => e !== null) });
      }
      case 'fs.mkdir':
        await fsp.mkdir(request.path, { recursive: request.recursive });
        return reply(channel, { type: 'result', stat: await statOf(request.path) });
      case 'fs.remove':
        await fsp.rm(request.path, { recursive: request.recursive, force: false });
        return reply(channel, { type: 'result' });
    }
  };
  run().then(done, (err) => {
    if (!channel.closed) errnoReply(channel, err, `${request.type} ${request.path}`);
    done();
  });
}

/** Reply `result{stat}` first (so the host knows the size), then the bytes on Fd.FILE, then EOF. */
async function readFile(channel: Channel, filePath: string): Promise<void> {
  const handle = await fsp.open(filePath, 'r');
  try {
    const st = await statOf(filePath);
    if (st.type !== 'file') {
      replyError(channel, 'FILE_ERROR', `${filePath} is not a regular file`);
      return;
    }
    reply(channel, { type: 'result', stat: st });
    await channel.pipeFrom(Fd.FILE, handle.createReadStream({ autoClose: false, highWaterMark: 64 * 1024 }));
  } finally {
    await handle.close();
  }
}

/** Handlers are attached before the first await: the content may arrive in the same read as the request. */
async function writeFile(
  channel: Channel,
  filePath: string,
  mode: number | undefined,
  parents: boolean,
): Promise<void> {
  const tmp = path.join(
    path.dirname(filePath),
    `.${path.basename(filePath)}.capsule-${randomBytes(4).toString('hex')}`,
  );
  const dirReady = parents
    ? fsp.mkdir(path.dirname(filePath), { recursive: true, mode: 0o755 })
    : Promise.resolve(undefined);
  const opened = dirReady.then(() => fsp.open(tmp, 'wx', mode ?? 0o644));
  opened.catch(() => undefined); // surfaced through `received` below
  let writes: Promise<unknown> = opened;
  const received = new Promise<void>((resolve, reject) => {
    channel.events.data = (fd, chunk) => {
      if (fd !== Fd.FILE) return undefined;
      writes = writes.then(async () => (await opened).write(chunk));
      writes.catch(reject);
      return writes;
    };
    channel.events.abort = reject;
    channel.events.eof = (fd) => {
      if (fd === Fd.FILE) writes.then(() => resolve(), reject);
    };
  });
  try {
    await received;
    const handle = await opened;
    await handle.sync();
    await handle.close();
    await fsp.rename(tmp, filePath);
    if (mode !== undefined) await fsp.chmod(filePath, mode);
  } catch (err) {
    await opened.then((h) => h.close()).catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  reply(channel, { type: 'result', stat: await statOf(filePath) });
}

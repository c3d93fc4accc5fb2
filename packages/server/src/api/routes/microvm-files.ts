// Files in a MicroVM, streamed both ways through the agent (never buffered whole here):
//   GET    /v1/microvms/:id/files?path=       raw download (Content-Length from the guest's stat)
//   PUT    /v1/microvms/:id/files?path=       raw upload; atomic in the guest (temp + fsync + rename)
//   DELETE /v1/microvms/:id/files?path=[&recursive=true]
//   GET    /v1/microvms/:id/files/list?path=  · GET …/files/stat?path=  · POST …/files/mkdir?path=
import { once } from 'node:events';
import { CapsuleError, ErrorCode, FileList, FileStat } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import { sendError, sendJson } from '../http.js';
import type { Route, RouteContext, RouteDoc } from '../router.js';
import { checkId } from './microvms.js';

const MAX_PATH_CHARS = 4096;

/** An absolute guest path with no `..` segment and no NUL; 400 otherwise. */
export function guestPath(query: URLSearchParams): string {
  const value = query.get('path');
  if (!value) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'query parameter "path" is required');
  if (value.length > MAX_PATH_CHARS) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `path is longer than ${MAX_PATH_CHARS} characters`);
  if (!value.startsWith('/')) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'path must be absolute');
  if (value.includes('\0')) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'path must not contain NUL');
  if (value.split('/').includes('..')) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'path must not contain ".." segments');
  return value;
}

function fileRoute(method: string, suffix: string, action: string, doc: RouteDoc, handle: (ctx: RouteContext, agent: Awaited<ReturnType<MicroVMService['agentFor']>>['agent'], path: string) => Promise<void>, service: MicroVMService): Route {
  return {
    method,
    pattern: `/v1/microvms/:id/files${suffix}`,
    doc: { ...doc, query: { path: 'absolute guest path, no ".." segment, no NUL', ...doc.query } },
    async handle(ctx) {
      const id = checkId(ctx.params.id);
      const path = guestPath(ctx.query);
      const { agent } = await service.agentFor(ctx.tenantId, id, action);
      await handle(ctx, agent, path);
    },
  };
}

export function fileRoutes(service: MicroVMService): Route[] {
  return [
    fileRoute('GET', '', 'read files of', { summary: 'Download a file (streamed)', responses: { 200: 'application/octet-stream' } }, async ({ res }, agent, path) => {
      // A regular file's size is promised as Content-Length and the body held to it (a file growing
      // while it is read is cut there; one shrinking ends the response short). Files whose stat size
      // means nothing (procfs, devices, empty-looking) go chunked.
      let remaining = Infinity;
      const transfer = agent.readFile(
        path,
        (chunk) => {
          const part = remaining === Infinity ? chunk : chunk.subarray(0, remaining);
          remaining -= part.length;
          if (part.length === 0) return undefined;
          return res.write(part) ? undefined : once(res, 'drain');
        },
        // headers go out when the size is known, before any byte (which may follow in the same read)
        (stat) => {
          const sized = stat.type === 'file' && stat.sizeBytes > 0;
          if (sized) remaining = stat.sizeBytes;
          res.writeHead(200, { 'content-type': 'application/octet-stream', ...(sized ? { 'content-length': stat.sizeBytes } : {}), 'last-modified': new Date(stat.modifiedAt).toUTCString() });
        },
      );
      res.once('close', () => {
        if (!res.writableFinished) transfer.cancel();
      });
      try {
        await transfer.stat;
      } catch (err) {
        return sendError(res, err);
      }
      try {
        await transfer.done;
        if (remaining !== Infinity && remaining > 0) res.destroy(); // the file shrank: a short body says so
        else res.end();
      } catch {
        res.destroy(); // mid-stream failure: the short body tells the client
      }
    }, service),
    fileRoute('PUT', '', 'write files of', { summary: 'Upload a file (streamed; atomic in the guest); missing parent directories are made (0755)', body: 'binary', query: { parents: 'false: a missing parent directory is a 404 instead' }, responses: { 200: FileStat } }, async ({ req, res, query }, agent, path) => {
      sendJson(res, 200, await agent.writeFile(path, req as AsyncIterable<Buffer>, { parents: query.get('parents') !== 'false' }));
    }, service),
    fileRoute('DELETE', '', 'delete files of', { summary: 'Delete a file or directory', query: { recursive: 'true to delete a non-empty directory' }, responses: { 204: null } }, async ({ res, query }, agent, path) => {
      await agent.remove(path, query.get('recursive') === 'true');
      res.writeHead(204).end();
    }, service),
    fileRoute('GET', '/list', 'list files of', { summary: 'List a directory', responses: { 200: FileList } }, async ({ res }, agent, path) => {
      sendJson(res, 200, { entries: await agent.list(path) });
    }, service),
    fileRoute('GET', '/stat', 'stat files of', { summary: 'Stat a path', responses: { 200: FileStat } }, async ({ res }, agent, path) => {
      sendJson(res, 200, await agent.stat(path));
    }, service),
    fileRoute('POST', '/mkdir', 'create directories in', { summary: 'Create a directory (and its parents)', responses: { 200: FileStat } }, async ({ res }, agent, path) => {
      sendJson(res, 200, await agent.mkdir(path));
    }, service),
  ];
}

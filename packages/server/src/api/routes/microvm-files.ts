// Files in a MicroVM, streamed both ways through the agent (never buffered whole here):
//   GET    /v1/microvms/{id}/files?path=       raw download (Content-Length from the guest's stat)
//   PUT    /v1/microvms/{id}/files?path=       raw upload; atomic in the guest (temp + fsync + rename)
//   DELETE /v1/microvms/{id}/files?path=[&recursive=true]
//   GET    /v1/microvms/{id}/files/list?path=  · GET …/files/stat?path=  · POST …/files/mkdir?path=
import { once } from 'node:events';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { z } from 'zod';
import { FileList, FileStat } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { ApiApp } from '../app.js';
import { GuestPath, MicroVMIdParam, QueryFlag } from '../params.js';
import { binaryBody, defineRoute, json, noContent, raw } from '../route.js';

const PathQuery = z.object({ path: GuestPath });
const tenant = { auth: 'tenant' } as const;

type Agent = Awaited<ReturnType<MicroVMService['agentFor']>>['agent'];

export function fileRoutes(app: ApiApp, service: MicroVMService): void {
  const agentOf = async (
    c: { var: { caller: { tenantId: string } }; req: { valid(target: 'param'): { id: string } } },
    action: string,
  ): Promise<Agent> => (await service.agentFor(c.var.caller.tenantId, c.req.valid('param').id, action)).agent;

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/microvms/{id}/files',
      summary: 'Download a file (streamed)',
      request: { params: MicroVMIdParam, query: PathQuery },
      responses: { 200: raw('application/octet-stream', 'the file') },
    }),
    async (c) => {
      const agent = await agentOf(c, 'read files of');
      const res = c.env.outgoing;
      // A regular file's size is promised as Content-Length and the body held to it (a file growing
      // while it is read is cut there; one shrinking ends the response short). Files whose stat size
      // means nothing (procfs, devices, empty-looking) go chunked.
      let remaining = Infinity;
      // a sized body ends with its last byte: the client has all of it and may send its next request on this
      // connection, so nothing that happens to the transfer after (its VM suspended, say) may cut it
      const finish = (): void => {
        if (!res.writableEnded) res.end();
      };
      const transfer = agent.readFile(
        c.req.valid('query').path,
        (chunk) => {
          const part = remaining === Infinity ? chunk : chunk.subarray(0, remaining);
          remaining -= part.length;
          if (part.length === 0) return undefined;
          const drained = res.write(part) ? undefined : once(res, 'drain');
          if (remaining === 0) finish();
          return drained;
        },
        // headers go out when the size is known, before any byte (which may follow in the same read)
        (stat) => {
          const sized = stat.type === 'file' && stat.sizeBytes > 0;
          if (sized) remaining = stat.sizeBytes;
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            ...(sized ? { 'content-length': stat.sizeBytes } : {}),
            'last-modified': new Date(stat.modifiedAt).toUTCString(),
          });
        },
      );
      res.once('close', () => {
        if (!res.writableFinished) transfer.cancel();
      });
      await transfer.stat; // a failure here is an ordinary error answer: no header has gone out
      try {
        await transfer.done;
        if (remaining !== Infinity && remaining > 0)
          res.destroy(); // the file shrank: a short body says so
        else finish();
      } catch {
        if (remaining === 0) finish();
        else res.destroy(); // mid-stream failure: the short body tells the client
      }
      return RESPONSE_ALREADY_SENT;
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'put',
      path: '/v1/microvms/{id}/files',
      summary: 'Upload a file (streamed; atomic in the guest); missing parent directories are made (0755)',
      request: {
        params: MicroVMIdParam,
        query: PathQuery.extend({
          parents: QueryFlag.meta({ description: 'false: a missing parent directory is a 404 instead' }).optional(),
        }),
        body: binaryBody(),
      },
      responses: { 200: json(FileStat) },
    }),
    async (c) => {
      const agent = await agentOf(c, 'write files of');
      const { path, parents } = c.req.valid('query');
      return c.json(
        await agent.writeFile(path, c.env.incoming as AsyncIterable<Buffer>, { parents: parents ?? true }),
        200,
      );
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'delete',
      path: '/v1/microvms/{id}/files',
      summary: 'Delete a file or directory',
      request: {
        params: MicroVMIdParam,
        query: PathQuery.extend({
          recursive: QueryFlag.meta({ description: 'true to delete a non-empty directory' }).optional(),
        }),
      },
      responses: { 204: noContent },
    }),
    async (c) => {
      const agent = await agentOf(c, 'delete files of');
      const { path, recursive } = c.req.valid('query');
      await agent.remove(path, recursive ?? false);
      return c.body(null, 204);
    },
  );

  const simple = (
    method: 'get' | 'post',
    suffix: string,
    summary: string,
    action: string,
    schema: typeof FileList | typeof FileStat,
    act: (agent: Agent, path: string) => Promise<unknown>,
  ): void => {
    app.openapi(
      defineRoute(tenant, {
        method,
        path: `/v1/microvms/{id}/files${suffix}`,
        summary,
        request: { params: MicroVMIdParam, query: PathQuery },
        responses: { 200: json(schema) },
      }),
      async (c) => c.json((await act(await agentOf(c, action), c.req.valid('query').path)) as never, 200),
    );
  };
  simple('get', '/list', 'List a directory', 'list files of', FileList, async (agent, path) => ({
    entries: await agent.list(path),
  }));
  simple('get', '/stat', 'Stat a path', 'stat files of', FileStat, (agent, path) => agent.stat(path));
  simple('post', '/mkdir', 'Create a directory (and its parents)', 'create directories in', FileStat, (agent, path) =>
    agent.mkdir(path),
  );
}

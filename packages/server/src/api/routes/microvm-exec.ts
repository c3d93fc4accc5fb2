// POST /v1/microvms/:id/exec → NDJSON stream: {"stdout":b64} / {"stderr":b64} lines, then
// {"exitCode":N,"signal":null} (or {"pid":N} for background). Backpressure: a slow reader stops the
// guest process's output at the agent's window, never buffering it here.
import { once } from 'node:events';
import { ExecRequest, type ExecEvent } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { ApiApp } from '../app.js';
import { toCapsuleError } from '../http.js';
import { MicroVMIdParam } from '../params.js';
import { defineRoute, jsonBody, raw } from '../route.js';

/** base64 stdin up to 64 MiB of JSON; larger inputs belong on the WebSocket exec. */
const EXEC_BODY_LIMIT_BYTES = 64 * 1024 * 1024;
const STDIN_CHUNK_BYTES = 64 * 1024;

async function* chunksOf(buffer: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < buffer.length; i += STDIN_CHUNK_BYTES) yield buffer.subarray(i, i + STDIN_CHUNK_BYTES);
}

export function execRoute(app: ApiApp, service: MicroVMService): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant', bodyLimitBytes: EXEC_BODY_LIMIT_BYTES },
      {
        method: 'post',
        path: '/v1/microvms/{id}/exec',
        summary: 'Run a command; the answer streams NDJSON ExecEvent lines, the last one the exit',
        request: { params: MicroVMIdParam, body: jsonBody(ExecRequest) },
        responses: { 200: raw('application/x-ndjson', 'ExecEvent lines') },
      },
    ),
    async (c) => {
      const request = c.req.valid('json');
      const res = c.env.outgoing;
      let finished = false;
      const begin = (): void => {
        if (res.headersSent) return;
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        // now, not with the first output: a client waits for headers only so long (undici: 300 s), and a
        // long command may print nothing for longer
        res.flushHeaders();
      };
      const line = (event: ExecEvent): void | Promise<unknown> => {
        begin();
        if (!res.write(JSON.stringify(event) + '\n')) return once(res, 'drain');
      };
      const handle = await service.exec(c.var.caller.tenantId, c.req.valid('param').id, request, {
        stdin: request.stdin ? chunksOf(Buffer.from(request.stdin, 'base64')) : undefined,
        onStdout: (chunk) => line({ stdout: chunk.toString('base64') }),
        onStderr: (chunk) => line({ stderr: chunk.toString('base64') }),
      });
      // the client hung up: stop the process rather than run it unobserved
      res.once('close', () => {
        if (!finished) handle.signal('SIGKILL');
      });
      try {
        const pid = await handle.pid;
        begin();
        const result = await handle.result;
        finished = true;
        if (request.background) line({ pid });
        else line({ exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut });
        res.end();
      } catch (err) {
        finished = true;
        if (!res.headersSent) throw err;
        const error = toCapsuleError(err);
        line({ error: { code: error.code, message: error.message } });
        res.end();
      }
      return RESPONSE_ALREADY_SENT;
    },
  );
}

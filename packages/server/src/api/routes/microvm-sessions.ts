// The interactive sessions' WebSocket routes, in the same table as every other route: authorised (a
// browser may pass its key as a second subprotocol), validated and 404'd before the upgrade; the
// socket then goes to InteractiveSessions (ws-sessions.ts).
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { z } from 'zod';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { ApiApp } from '../app.js';
import { MicroVMIdParam, QueryInt } from '../params.js';
import { defineRoute, type ApiEnv } from '../route.js';
import { type InteractiveSessions, LOGIN_SHELL, type Start } from '../ws-sessions.js';

const switching = {
  description: 'Switching Protocols: the session, in the capsule.v1 subprotocol (WsClientMessage / WsServerMessage)',
};
const PtyQuery = z.object({
  rows: QueryInt(1, 1000, 'rows').meta({ description: 'terminal rows (default 24)' }).optional(),
  cols: QueryInt(1, 1000, 'cols').meta({ description: 'terminal columns (default 80)' }).optional(),
});

export function sessionRoutes(app: ApiApp, service: MicroVMService, sessions: InteractiveSessions): void {
  const open = async (
    env: ApiEnv['Bindings'],
    tenantId: string,
    id: string,
    preset: Start | null,
  ): Promise<Response> => {
    if (!env.upgrade)
      throw new CapsuleError(
        ErrorCode.BAD_REQUEST,
        'this route is a WebSocket: send "Connection: Upgrade" and "Upgrade: websocket"',
      );
    await service.get(tenantId, id); // 404 before the upgrade, not after
    sessions.accept(env.incoming, env.upgrade, tenantId, id, preset);
    return RESPONSE_ALREADY_SENT;
  };

  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/microvms/{id}/exec/ws',
        summary:
          'A command over WebSocket: the first message says what to run (optionally on a terminal); stdin, ' +
          'resize and signals in, output out',
        request: { params: MicroVMIdParam },
        responses: { 101: switching },
      },
    ),
    (c) => open(c.env, c.var.caller.tenantId, c.req.valid('param').id, null),
  );

  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/microvms/{id}/shell',
        summary: 'A login shell on a terminal, over WebSocket',
        request: { params: MicroVMIdParam, query: PtyQuery },
        responses: { 101: switching },
      },
    ),
    (c) => {
      const { rows, cols } = c.req.valid('query');
      return open(c.env, c.var.caller.tenantId, c.req.valid('param').id, {
        type: 'start',
        command: LOGIN_SHELL,
        pty: { rows: rows ?? 24, cols: cols ?? 80 },
      });
    },
  );
}

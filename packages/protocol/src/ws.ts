// The interactive exec/shell WebSocket (GET /v1/microvms/{id}/exec/ws, GET /v1/microvms/{id}/shell).
// Client → server: binary frames are stdin bytes; text frames are WsClientMessage JSON (exec/ws starts
// with `start`). Server → client: binary frames are [fd byte (1 stdout, 2 stderr)] + bytes; text
// frames are WsServerMessage JSON, the last one `exit` or `error`, then the server closes.
// Browsers cannot set headers on a WebSocket: the API key may come as the subprotocol `capsule.bearer.<key>`.
import { z } from 'zod';
import { ExecRequest } from './api.js';
import { PtySize, SignalName } from './messages.js';

export const WS_SUBPROTOCOL = 'capsule.v1';
export const WS_BEARER_PREFIX = 'capsule.bearer.';

export const WsClientMessage = z.discriminatedUnion('type', [
  ExecRequest.omit({ stdin: true, background: true })
    .extend({ type: z.literal('start'), pty: PtySize.optional() })
    .strict(),
  z
    .object({
      type: z.literal('resize'),
      rows: z.number().int().min(1).max(1000),
      cols: z.number().int().min(1).max(1000),
    })
    .strict(),
  z.object({ type: z.literal('signal'), signal: SignalName }).strict(),
  /** End of stdin (a terminal gets Ctrl-D). */
  z.object({ type: z.literal('eof') }).strict(),
]);
export type WsClientMessage = z.infer<typeof WsClientMessage>;

export const WsServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), pid: z.number() }),
  z.object({
    type: z.literal('exit'),
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
  }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type WsServerMessage = z.infer<typeof WsServerMessage>;

// GET /v1/events: Server-Sent Events of the caller's MicroVMs as they are made and change state, each
// `event: microvm` with the MicroVM as GET /v1/microvms/{id} answers it. The console's live list uses it
// (with polling as its fallback). A stream starts with `event: ready`, keeps the connection alive with a
// comment every 15 s, and is cut (the client reconnects and re-lists) when it falls 256 events behind.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { streamSSE } from 'hono/streaming';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { Store } from '../../store/types.js';
import type { ApiApp } from '../app.js';
import { defineRoute, raw } from '../route.js';
import { microvmView } from './microvms.js';

const KEEPALIVE_MS = 15_000;
/** Events written but not yet taken by the client: past this, the client is too slow to follow. */
const MAX_BEHIND = 256;
/** Open streams per tenant (each holds a connection). */
const MAX_EVENT_STREAMS_PER_TENANT = 16;

/** The open event streams, closed with the server. */
export class EventStreams {
  private readonly open = new Map<string, Set<() => void>>();

  /** Count a stream in; `close` ends it. Refuses a tenant at its cap. */
  add(tenantId: string, close: () => void): () => void {
    const streams = this.open.get(tenantId) ?? new Set();
    if (streams.size >= MAX_EVENT_STREAMS_PER_TENANT)
      throw new CapsuleError(
        ErrorCode.RATE_LIMITED,
        `at most ${MAX_EVENT_STREAMS_PER_TENANT} event streams may be open per tenant: close one first`,
      );
    streams.add(close);
    this.open.set(tenantId, streams);
    return () => {
      streams.delete(close);
      if (streams.size === 0) this.open.delete(tenantId);
    };
  }

  closeAll(): void {
    for (const streams of this.open.values()) for (const close of [...streams]) close();
  }
}

export function eventRoutes(app: ApiApp, service: MicroVMService, store: Store, streams: EventStreams): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/events',
        summary: "A live stream of the caller's MicroVMs as they are made and change state (Server-Sent Events)",
        description:
          'Each change is `event: microvm` with `data:` the MicroVM as `GET /v1/microvms/{id}` answers it. The ' +
          'stream opens with `event: ready` and sends a comment every 15 s. A client that falls 256 events ' +
          'behind is disconnected: reconnect and list again.',
        responses: { 200: raw('text/event-stream', 'the event stream') },
      },
    ),
    async (c) => {
      const tenantId = c.var.caller.tenantId;
      let end: () => void = () => undefined;
      const release = streams.add(tenantId, () => end());
      return streamSSE(
        c,
        async (stream) => {
          let behind = 0;
          const ended = new Promise<void>((resolve) => {
            end = () => {
              resolve();
              void stream.close();
            };
            stream.onAbort(resolve);
          });
          const unsubscribe = store.onMicroVMChange((record) => {
            if (record.tenantId !== tenantId) return;
            if (++behind > MAX_BEHIND) return end();
            const data = JSON.stringify(microvmView(service, record));
            void stream.writeSSE({ event: 'microvm', data }).then(() => behind--, end);
          });
          try {
            await stream.writeSSE({ event: 'ready', data: '{}' });
            for (;;) {
              const keepalive = new Promise<'tick'>((resolve) => {
                const timer = setTimeout(() => resolve('tick'), KEEPALIVE_MS);
                void ended.then(() => clearTimeout(timer));
              });
              if ((await Promise.race([ended, keepalive])) !== 'tick') break;
              await stream.write(': keep-alive\n\n');
            }
          } finally {
            unsubscribe();
            release();
          }
        },
        async () => undefined,
      ); // a client gone mid-write: nothing to report
    },
  );
}

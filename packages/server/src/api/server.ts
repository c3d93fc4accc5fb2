// The REST API's HTTP server: MicroVM endpoints (by Host name or /v1/microvms/{id}/proxy/…) go to the
// proxy, exec/shell WebSockets to the interactive sessions; everything else is routed, authenticated and answered with the one error envelope. Handlers
// live in routes/.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { authenticate } from './auth.js';
import type { Metrics } from './metrics.js';
import { rejectUpgrade, sendError, toCapsuleError } from './http.js';
import type { EndpointProxy } from './proxy.js';
import type { InteractiveSessions } from './ws-sessions.js';
import { Router, type Route } from './router.js';
import type { ApiLimits } from '../lifecycle/limits.js';

const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface ApiServerDeps {
  /** Against slow clients (lifecycle/limits.ts). */
  limits: Pick<ApiLimits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxConnections'>;
  routes: Route[];
  store: Store;
  metrics: Metrics;
  proxy: EndpointProxy;
  sessions: InteractiveSessions;
  log: Logger;
}

export function createApiServer({ limits, routes, store, metrics, proxy, sessions, log }: ApiServerDeps): http.Server {
  const router = new Router();
  for (const route of routes) router.add(route);
  const fail = (req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void => {
    const error = toCapsuleError(err);
    if (error.code === 'INTERNAL') log.error('request failed', { method: req.method, url: req.url, error: String((err as Error)?.stack ?? err) });
    sendError(res, error);
  };
  // a client that trickles its headers or its body is cut at the deadline, checked every second
  const options = { headersTimeout: limits.headersTimeoutMs, requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs), connectionsCheckingInterval: 1000 };
  const server = http.createServer(options, async (req, res) => {
    let pattern = 'unmatched';
    res.once('finish', () => metrics.requests.inc({ method: req.method ?? '', route: pattern, status: String(res.statusCode) }));
    try {
      const target = proxy.target(req);
      if (target) {
        pattern = 'endpoint';
        return await proxy.handle(req, res, target);
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const { route, params } = router.match(req.method ?? 'GET', url.pathname);
      pattern = route.pattern;
      const caller = route.public ? { tenantId: '', isAdmin: false } : await authenticate(req, store);
      await route.handle({ req, res, params, query: url.searchParams, ...caller });
    } catch (err) {
      fail(req, res, err);
    }
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    try {
      const target = proxy.target(req);
      if (!target && sessions.matches(req)) return void sessions.upgrade(req, socket, head);
      if (!target) throw new CapsuleError(ErrorCode.NOT_FOUND, `no WebSocket route for ${req.url}`);
      void proxy.upgrade(req, socket, head, target).catch(() => socket.destroy());
    } catch (err) {
      rejectUpgrade(socket, err);
    }
  });
  // Idle keep-alive connections stay open longer than clients keep them (fetch/undici keeps one for the
  // server's hint minus 1 s): with Node's 5 s default, a client whose timers run late reuses a socket
  // the server has just closed. (Node 20 starts the headers deadline at a request's first byte, so an
  // idle keep-alive connection is governed by this alone.)
  // after listen (whose own failure the caller awaits): an accept that fails (EMFILE…) is logged, not an exit
  server.on('error', (err) => log.error('API server error', { error: err.message }));
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxConnections = limits.maxConnections;
  return server;
}

// The REST API's HTTP server: routing, authentication, error envelope. Handlers live in routes/.
import http from 'node:http';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { authenticate } from './auth.js';
import type { Metrics } from './metrics.js';
import { sendError, toCapsuleError } from './http.js';
import { Router, type Route } from './router.js';

export function createApiServer(routes: Route[], store: Store, metrics: Metrics, log: Logger): http.Server {
  const router = new Router();
  for (const route of routes) router.add(route);
  return http.createServer(async (req, res) => {
    let pattern = 'unmatched';
    res.once('finish', () => metrics.requests.inc({ method: req.method ?? '', route: pattern, status: String(res.statusCode) }));
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const { route, params } = router.match(req.method ?? 'GET', url.pathname);
      pattern = route.pattern;
      const caller = route.public ? { tenantId: '', isAdmin: false } : await authenticate(req, store);
      await route.handle({ req, res, params, query: url.searchParams, ...caller });
    } catch (err) {
      const error = toCapsuleError(err);
      if (error.code === 'INTERNAL') log.error('request failed', { method: req.method, url: req.url, error: String((err as Error)?.stack ?? err) });
      sendError(res, error);
    }
  });
}

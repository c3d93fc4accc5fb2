// The REST API's HTTP server: requests for a MicroVM on another host go there (forward.ts); MicroVM
// endpoints (by Host name or /v1/microvms/{id}/proxy/…) go to the proxy; the AWS Lambda MicroVMs API
// (/2025-09-09/…, maybe under a prefix) to aws/handler.ts; everything else, WebSocket upgrades included, to
// the route table (app.ts), whose handlers live in routes/.
// Connection limits against slow clients are set here.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Logger } from '../log.js';
import { type NodeSignatures, verifyNodeRequest } from '../node-signature.js';
import type { ApiApp } from './app.js';
import type { Metrics } from '../observability/metrics.js';
import { answerUpgrade, rejectUpgrade, sendError } from './http.js';
import type { EndpointProxy } from './proxy.js';
import type { ApiEnv, Upgrade } from './route.js';
import type { ApiLimits } from '../config.js';
import { awsSegments, handleAwsRequest, type AwsApiDeps } from './aws/handler.js';
import type { Forwarder } from './forward.js';

const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface ApiServerDeps {
  /** Against slow clients (lifecycle/limits.ts). */
  limits: Pick<ApiLimits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'maxConnections'>;
  app: ApiApp;
  /** The route pattern each answered request matched (app.ts's onRoute), for the request metrics. */
  routeOf: (req: http.IncomingMessage) => string | undefined;
  metrics: Metrics;
  proxy: EndpointProxy;
  /** The AWS Lambda MicroVMs API (aws/handler.ts), beside the route table. */
  aws: AwsApiDeps;
  /** Requests for MicroVMs on other hosts. */
  forwarder: Forwarder;
  /**
   * A host of a cluster (CAPSULE_ROLE=host) answers only what its cluster's servers sign with these (and /healthz);
   * null: every client.
   */
  clusterOnly: NodeSignatures | null;
  log: Logger;
}

/** FORBIDDEN for a request a host of a cluster must not take from a client directly. */
function checkSigned(clusterOnly: NodeSignatures | null, req: http.IncomingMessage): void {
  if (!clusterOnly || (req.url ?? '').split('?')[0] === '/healthz') return;
  if (!verifyNodeRequest(clusterOnly, req.method ?? 'GET', req.url ?? '/', req.headers))
    throw new CapsuleError(
      ErrorCode.FORBIDDEN,
      "this server is a host of a cluster (CAPSULE_ROLE=host): it answers only requests its cluster's other " +
        'servers sign; send this to one of them',
    );
}

export function createApiServer(deps: ApiServerDeps): http.Server {
  const { limits, app, routeOf, metrics, proxy, aws, forwarder, clusterOnly, log } = deps;
  const answer = getRequestListener(app.fetch, { overrideGlobalObjects: false });
  // a client that trickles its headers or its body is cut at the deadline, checked every second
  const options = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    connectionsCheckingInterval: 1000,
  };
  const server = http.createServer(options, async (req, res) => {
    let pattern = 'unmatched';
    res.once('finish', () =>
      metrics.requests.inc({
        method: req.method ?? '',
        route: routeOf(req) ?? pattern,
        status: String(res.statusCode),
      }),
    );
    try {
      checkSigned(clusterOnly, req);
      const elsewhere = await forwarder.target(req);
      if (elsewhere) {
        pattern = 'forwarded';
        return forwarder.forward(req, res, elsewhere);
      }
      const target = proxy.target(req);
      const awsPath = target ? null : awsSegments(req.url ?? '/');
      if (awsPath) {
        pattern = 'aws';
        return await handleAwsRequest(aws, req, res, awsPath);
      }
      if (!target) return await answer(req, res);
      pattern = 'endpoint';
      await proxy.handle(req, res, target);
    } catch (err) {
      sendError(res, err);
    }
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    void (async () => {
      checkSigned(clusterOnly, req);
      const elsewhere = await forwarder.target(req);
      if (elsewhere) return forwarder.upgrade(req, socket, head, elsewhere);
      const target = proxy.target(req);
      if (target) return void proxy.upgrade(req, socket, head, target).catch(() => socket.destroy());
      await routeUpgrade(app, req, { socket, head, taken: false });
    })().catch((err) => rejectUpgrade(socket, err));
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

/**
 * An upgrade through the route table: a WebSocket route takes the socket; any other answer is written to it and it is
 * closed.
 */
async function routeUpgrade(app: ApiApp, req: http.IncomingMessage, upgrade: Upgrade): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers))
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  const env: ApiEnv['Bindings'] = { incoming: req, outgoing: undefined as never, upgrade };
  const response = await app.fetch(new Request(new URL(req.url ?? '/', 'http://localhost'), { headers }), env);
  if (upgrade.taken) return;
  answerUpgrade(upgrade.socket, response.status, response.headers, Buffer.from(await response.arrayBuffer()));
}

// The whole API surface assembled: the route table (every /v1 route, health, metrics, the document)
// and the HTTP server around it with the endpoint proxy and the interactive sessions.
import { codeSourcesOf } from '../images/code-source.js';
import { buildMachineOf } from './aws/build-ops.js';
import type http from 'node:http';
import type { MicroVMUsage } from '@capsule/protocol';
import type { CapsuleConfig } from '../config.js';
import type { ImageService } from '../images/image-service.js';
import type { MicroVMService } from '../lifecycle/microvm-service.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import type { SystemVms } from '../system-vms.js';
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import type { NodeSignatures } from '../node-signature.js';
import { createApiApp, type ApiApp } from './app.js';
import type { AuthTokens } from './auth-tokens.js';
import type { Metrics } from '../observability/metrics.js';
import { consoleRoutes } from './console.js';
import { openApiRoute } from './openapi.js';
import { EndpointProxy } from './proxy.js';
import { authTokenRoute } from './routes/auth-tokens.js';
import { healthRoute, metricsRoute, SERVER_VERSION } from './routes/health.js';
import { imageRoutes } from './routes/images.js';
import { execRoute } from './routes/microvm-exec.js';
import { fileRoutes } from './routes/microvm-files.js';
import { networkRoutes } from './routes/microvm-network.js';
import { sessionRoutes } from './routes/microvm-sessions.js';
import { eventRoutes, EventStreams } from './routes/events.js';
import { meRoute } from './routes/me.js';
import { historyRoute } from './routes/microvm-history.js';
import { microvmRoutes } from './routes/microvms.js';
import { runtimeRoutes } from './routes/runtimes.js';
import { hostRoutes } from './routes/hosts.js';
import { Forwarder } from './forward.js';
import { tenantRoutes, type TenantUsageSource } from './routes/tenants.js';
import { createApiServer } from './server.js';
import { InteractiveSessions } from './ws-sessions.js';
import type { ServerKey } from '../aws/server-key.js';
import type { RuntimeRegistry } from '../runtimes/registry.js';
import { awsKeyLookup } from '../aws/access-keys.js';

export interface ApiDeps {
  config: CapsuleConfig;
  store: Store;
  service: MicroVMService;
  images: ImageService;
  accelerator: AcceleratorDecision;
  metrics: Metrics;
  tokens: AuthTokens;
  usage: TenantUsageSource;
  /** The built-in runtimes (the AWS API's managed images). */
  runtimes: Pick<RuntimeRegistry, 'list'>;
  /** Seals the secrets of AWS-style access keys (aws/server-key.ts). */
  serverKey: ServerKey;
  systemVms: SystemVms | null;
  /** Checks requests other nodes sign (a draining host's resumes); null without CAPSULE_CLUSTER_KEY. */
  nodes?: NodeSignatures | null;
  log: Logger;
}

/** Every route on one app; `onRoute` hears each matched request's pattern. */
export function apiRoutes(
  deps: Omit<ApiDeps, 'config'> & {
    config: Pick<
      CapsuleConfig,
      'defaultQuotas' | 'dataDir' | 's3' | 's3CodePrefixes' | 'blobs' | 'consoleDir' | 'clusterKey'
    >;
  },
  sessions: InteractiveSessions,
  onRoute?: (req: http.IncomingMessage, pattern: string) => void,
  events = new EventStreams(),
): ApiApp {
  const { config, store, service, metrics } = deps;
  const app = createApiApp({ store, log: deps.log, nodes: deps.nodes, onRoute });
  healthRoute(app, deps.accelerator);
  metricsRoute(app, metrics, store, (): ReadonlyMap<string, MicroVMUsage> => service.usageByTenant(), deps.systemVms);
  microvmRoutes(app, service);
  eventRoutes(app, service, store, events);
  historyRoute(app, service, store);
  execRoute(app, service);
  sessionRoutes(app, service, sessions);
  fileRoutes(app, service);
  networkRoutes(app, service);
  authTokenRoute(app, service, deps.tokens);
  tenantRoutes(app, store, config, deps.usage, deps.serverKey);
  imageRoutes(app, deps.images, codeSourcesOf(config));
  runtimeRoutes(app, deps.runtimes);
  hostRoutes(app, store);
  meRoute(app);
  openApiRoute(app, SERVER_VERSION);
  consoleRoutes(app, config.consoleDir);
  return app;
}

/** The API's HTTP server, not yet listening; `close` drops the open interactive sessions. */
export function createApi(deps: ApiDeps): { server: http.Server; closeSessions: () => void } {
  const routeOf = new WeakMap<http.IncomingMessage, string>();
  const sessions = new InteractiveSessions(deps.service);
  const events = new EventStreams();
  const app = apiRoutes(deps, sessions, (req, pattern) => routeOf.set(req, pattern), events);
  const proxy = new EndpointProxy(deps.service, deps.store, deps.tokens, deps.config.baseDomain);
  const server = createApiServer({
    limits: deps.config.apiLimits,
    app,
    routeOf: (req) => routeOf.get(req),
    metrics: deps.metrics,
    proxy,
    forwarder: new Forwarder(
      deps.store,
      deps.config.hostId,
      (req) => proxy.target(req)?.microvmId ?? null,
      deps.nodes ?? null,
      deps.config.role !== 'api',
      deps.config.placement,
    ),
    clusterOnly: deps.config.role === 'host' ? (deps.nodes ?? null) : null,
    aws: {
      service: deps.service,
      store: deps.store,
      tokens: deps.tokens,
      images: deps.images,
      runtimes: () => deps.runtimes.list(),
      lookup: awsKeyLookup(deps.store, deps.serverKey),
      codeSources: codeSourcesOf(deps.config),
      endpoints: {
        publicUrl: deps.config.publicUrl,
        form: deps.config.awsEndpointForm,
        baseDomain: deps.config.baseDomain,
      },
      buildMachine: buildMachineOf(process.arch, deps.accelerator.accelerator),
    },
    log: deps.log,
  });
  return {
    server,
    closeSessions: () => {
      sessions.close();
      proxy.close();
      events.closeAll();
    },
  };
}

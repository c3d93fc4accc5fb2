// The API contract as a document, without a server: the route table built with inert dependencies
// (registration only declares routes; no handler runs), then its OpenAPI document. docs/openapi.json is
// this, committed; `npm run openapi` rewrites it and a unit test fails while the two differ.
import { apiRoutes, type ApiDeps } from './api.js';
import { openApiDocument } from './openapi.js';
import { SERVER_VERSION } from './routes/health.js';
import type { InteractiveSessions } from './ws-sessions.js';

const inert = new Proxy({}, { get: () => inert }) as never;

export function contractDocument(): object {
  const deps: ApiDeps = {
    config: { defaultQuotas: inert, dataDir: '', s3: null, s3CodePrefixes: [], blobs: null, consoleDir: '' } as never,
    store: inert,
    service: inert,
    images: inert,
    accelerator: inert,
    metrics: inert,
    tokens: inert,
    usage: inert,
    serverKey: inert,
    runtimes: inert,
    systemVms: null,
    log: inert,
  };
  return openApiDocument(apiRoutes(deps, inert as InteractiveSessions), SERVER_VERSION);
}

export const CONTRACT_FILE = new URL('../../../../docs/openapi.json', import.meta.url);

// POST /v1/microvms/:id/auth-tokens: a token for the MicroVM's endpoint, limited to some guest ports
// and a TTL of at most an hour. Only the VM's own tenant can mint one.
import { AuthToken, CreateAuthTokenRequest } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { AuthTokens } from '../auth-tokens.js';
import { readJson, sendJson } from '../http.js';
import type { Route } from '../router.js';
import { checkId } from './microvms.js';

export function authTokenRoute(service: MicroVMService, tokens: AuthTokens): Route {
  return {
    method: 'POST',
    pattern: '/v1/microvms/:id/auth-tokens',
    doc: { summary: "An auth token for the MicroVM's endpoint (X-Capsule-Auth), limited to ports and a TTL ≤ 3600 s", body: CreateAuthTokenRequest, responses: { 201: AuthToken } },
    async handle({ req, res, params, tenantId }) {
      const vm = await service.get(tenantId, checkId(params.id));
      const request = await readJson(req, CreateAuthTokenRequest, 4096, { emptyIsObject: true });
      const allowedPorts = [...new Set(request.allowedPorts)].sort((a, b) => a - b);
      const expiresAtMs = Date.now() + request.ttlSeconds * 1000;
      const token = tokens.issue({ microvmId: vm.id, tenantId, allowedPorts, expiresAtMs });
      sendJson(res, 201, { token, expiresAt: new Date(expiresAtMs).toISOString(), allowedPorts } satisfies AuthToken);
    },
  };
}

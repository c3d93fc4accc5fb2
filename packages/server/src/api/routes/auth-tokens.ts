// POST /v1/microvms/{id}/auth-tokens: a token for the MicroVM's endpoint, limited to some guest ports
// and a TTL of at most an hour. Only the VM's own tenant can mint one.
import { AuthToken, CreateAuthTokenRequest, DEFAULT_ENDPOINT_PORT } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { ApiApp } from '../app.js';
import { type AuthTokens, normalizedPorts } from '../auth-tokens.js';
import { MicroVMIdParam } from '../params.js';
import { defineRoute, json, jsonBody } from '../route.js';

export function authTokenRoute(app: ApiApp, service: MicroVMService, tokens: AuthTokens): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant', bodyLimitBytes: 4096 },
      {
        method: 'post',
        path: '/v1/microvms/{id}/auth-tokens',
        summary: "An auth token for the MicroVM's endpoint (X-Capsule-Auth), limited to ports and a TTL ≤ 3600 s",
        request: { params: MicroVMIdParam, body: jsonBody(CreateAuthTokenRequest, false) },
        responses: { 201: json(AuthToken) },
      },
    ),
    async (c) => {
      const { tenantId } = c.var.caller;
      const vm = await service.get(tenantId, c.req.valid('param').id);
      const request = c.req.valid('json');
      const ranges: Array<[number, number]> = (request.allowedPortRanges ?? []).map((r) => [r.start, r.end]);
      if (request.allPorts) ranges.push([1, 65_535]);
      const allowedPorts = normalizedPorts(request.allowedPorts ?? (ranges.length > 0 ? [] : [DEFAULT_ENDPOINT_PORT]));
      const expiresAtMs = Date.now() + request.ttlSeconds * 1000;
      const token = tokens.issue({ microvmId: vm.id, tenantId, allowedPorts, allowedPortRanges: ranges, expiresAtMs });
      const answer: AuthToken = {
        token,
        expiresAt: new Date(expiresAtMs).toISOString(),
        allowedPorts,
        ...(ranges.length > 0 ? { allowedPortRanges: ranges.map(([start, end]) => ({ start, end })) } : {}),
      };
      return c.json(answer, 201);
    },
  );
}

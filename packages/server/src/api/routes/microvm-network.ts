// PATCH /v1/microvms/{id}/network (a new egress policy, in force within a second) and
// GET /v1/microvms/{id}/network/log (its DNS queries and flow verdicts, newest last).
import { z } from 'zod';
import { EgressLog, MicroVM as MicroVMSchema, NetworkPolicy } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import { MAX_ENTRIES } from '../../network/egress-log.js';
import type { ApiApp } from '../app.js';
import { MicroVMIdParam, QueryInt } from '../params.js';
import { defineRoute, json, jsonBody } from '../route.js';
import { microvmView } from './microvms.js';

export function networkRoutes(app: ApiApp, service: MicroVMService): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant', bodyLimitBytes: 64 * 1024 },
      {
        method: 'patch',
        path: '/v1/microvms/{id}/network',
        summary:
          'Change the egress policy (none, all, allowlist; allow and deny entries): in force within a second, ' +
          'no restart',
        request: { params: MicroVMIdParam, body: jsonBody(NetworkPolicy) },
        responses: { 200: json(MicroVMSchema) },
      },
    ),
    async (c) => {
      const { id } = c.req.valid('param');
      const record = await service.updateNetwork(c.var.caller.tenantId, id, c.req.valid('json'));
      return c.json(microvmView(service, record), 200);
    },
  );

  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/microvms/{id}/network/log',
        summary: `The egress log: DNS queries and new flows with their verdict and rule (newest ${MAX_ENTRIES} kept)`,
        request: {
          params: MicroVMIdParam,
          query: z.object({
            limit: QueryInt(1, MAX_ENTRIES, 'limit')
              .meta({ description: `at most this many, newest (1-${MAX_ENTRIES})` })
              .optional(),
          }),
        },
        responses: { 200: json(EgressLog) },
      },
    ),
    async (c) =>
      c.json(
        {
          entries: await service.networkLog(
            c.var.caller.tenantId,
            c.req.valid('param').id,
            c.req.valid('query').limit ?? MAX_ENTRIES,
          ),
        },
        200,
      ),
  );
}

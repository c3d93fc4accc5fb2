// PATCH /v1/microvms/:id/network (a new egress policy, in force within a second) and
// GET /v1/microvms/:id/network/log (its DNS queries and flow verdicts, newest last).
import { CapsuleError, EgressLog, ErrorCode, MicroVM as MicroVMSchema, NetworkPolicy } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import { toApi } from '../../lifecycle/records.js';
import { readJson, sendJson } from '../http.js';
import type { Route } from '../router.js';
import { checkId } from './microvms.js';
import { MAX_ENTRIES } from '../../network/egress-log.js';

export function networkRoutes(service: MicroVMService): Route[] {
  return [
    {
      method: 'PATCH',
      pattern: '/v1/microvms/:id/network',
      doc: { summary: 'Change the egress policy (none, all, allowlist; allow and deny entries): in force within a second, no restart', body: NetworkPolicy, responses: { 200: MicroVMSchema } },
      async handle({ req, res, params, tenantId }) {
        const id = checkId(params.id);
        const policy = await readJson(req, NetworkPolicy, 64 * 1024);
        const record = await service.updateNetwork(tenantId, id, policy);
        sendJson(res, 200, toApi(record, service.endpointFor(id), service.usageOf(id)));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/microvms/:id/network/log',
      doc: { summary: `The egress log: DNS queries and new flows with their verdict and rule (newest ${MAX_ENTRIES} kept)`, query: { limit: `at most this many, newest (1-${MAX_ENTRIES})` }, responses: { 200: EgressLog } },
      async handle({ res, params, query, tenantId }) {
        const raw = query.get('limit');
        const limit = raw === null ? MAX_ENTRIES : Number(raw);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ENTRIES) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `limit must be an integer from 1 to ${MAX_ENTRIES}`);
        sendJson(res, 200, { entries: await service.networkLog(tenantId, checkId(params.id), limit) } satisfies EgressLog);
      },
    },
  ];
}

// /v1/microvms: run, list, get, logs, suspend, resume, terminate.
import { CapsuleError, ErrorCode, LABEL_KEY, type MicroVM, MicroVM as MicroVMSchema, MicroVMList, MicroVMState, RunMicroVMRequest } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { MicroVMRecord } from '../../store/types.js';
import { toApi as recordToApi } from '../../lifecycle/records.js';
import { readJson, sendJson } from '../http.js';
import type { Route } from '../router.js';

const ID_PATTERN = /^mvm-[a-z2-7]{16}$/;
const MAX_PAGE = 100;
const CONSOLE_LOG_MAX_BYTES = 1 << 20;

export function checkId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new CapsuleError(ErrorCode.NOT_FOUND, `MicroVM ${JSON.stringify(id.slice(0, 64))} not found`);
  return id;
}

function pageLimit(raw: string | null): number {
  if (raw === null) return MAX_PAGE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `limit must be an integer from 1 to ${MAX_PAGE}`);
  return n;
}

/** A route on one MicroVM that answers with the MicroVM object. */
function vmRoute(method: string, suffix: string, summary: string, toApi: (r: MicroVMRecord) => MicroVM, act: (tenantId: string, id: string) => Promise<MicroVMRecord>): Route {
  return {
    method,
    pattern: `/v1/microvms/:id${suffix}`,
    doc: { summary, responses: { 200: MicroVMSchema } },
    async handle({ res, params, tenantId }) {
      sendJson(res, 200, toApi(await act(tenantId, checkId(params.id))));
    },
  };
}

export function microvmRoutes(service: MicroVMService): Route[] {
  const toApi = (record: MicroVMRecord): MicroVM => recordToApi(record, service.endpointFor(record.id), service.usageOf(record.id));
  return [
    {
      method: 'POST',
      pattern: '/v1/microvms',
      doc: { summary: 'Launch a MicroVM (from its image\'s ready snapshot when there is one)', body: RunMicroVMRequest, responses: { 201: MicroVMSchema } },
      async handle({ req, res, tenantId }) {
        const request = await readJson(req, RunMicroVMRequest);
        sendJson(res, 201, toApi(await service.run(tenantId, request)));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/microvms',
      doc: {
        summary: 'List MicroVMs, newest id last, paginated',
        query: { state: 'only this state', imageName: 'only this image', 'metadata.KEY': 'metadata KEY equals the value (repeatable)', limit: `page size, 1-${MAX_PAGE}`, nextToken: 'from the previous page' },
        responses: { 200: MicroVMList },
      },
      async handle({ res, query, tenantId }) {
        const state = query.get('state');
        if (state !== null && !MicroVMState.safeParse(state).success) {
          throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `state must be one of ${MicroVMState.options.join(', ')}`);
        }
        const metadata: Record<string, string> = {};
        for (const [key, value] of query) if (key.startsWith('metadata.')) metadata[key.slice('metadata.'.length)] = value;
        const badKey = Object.keys(metadata).find((key) => !LABEL_KEY.test(key));
        if (badKey !== undefined) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `metadata filter key ${JSON.stringify(badKey)} must match ${LABEL_KEY}`);
        const limit = pageLimit(query.get('limit'));
        const records = await service.list({
          tenantId,
          state: (state as MicroVMState | null) ?? undefined,
          imageName: query.get('imageName') ?? undefined,
          metadata,
          limit: limit + 1,
          after: query.get('nextToken') ?? undefined,
        });
        const page = records.slice(0, limit);
        sendJson(res, 200, { microvms: page.map(toApi), nextToken: records.length > limit ? page[page.length - 1].id : null });
      },
    },
    {
      method: 'GET',
      pattern: '/v1/microvms/:id/logs',
      doc: { summary: "The tail (≤ 1 MiB) of the MicroVM's serial console while it runs", responses: { 200: 'text/plain' } },
      async handle({ res, params, tenantId }) {
        const text = await service.consoleLog(tenantId, checkId(params.id), CONSOLE_LOG_MAX_BYTES);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
      },
    },
    vmRoute('GET', '', 'One MicroVM', toApi, (tenantId, id) => service.get(tenantId, id)),
    vmRoute('POST', '/suspend', 'Suspend: save memory, devices and disk, stop the VM process', toApi, (tenantId, id) => service.suspend(tenantId, id)),
    vmRoute('POST', '/resume', 'Resume exactly where it was suspended', toApi, (tenantId, id) => service.resume(tenantId, id)),
    vmRoute('DELETE', '', 'Terminate and discard', toApi, (tenantId, id) => service.terminate(tenantId, id)),
  ];
}

// /v1/microvms: run, list, get, logs, suspend, resume, terminate.
import {
  CapsuleError,
  ErrorCode,
  LABEL_KEY,
  type MicroVM,
  MicroVM as MicroVMSchema,
  MicroVMList,
  type MicroVMState,
  RunMicroVMRequest,
} from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { MicroVMRecord } from '../../store/types.js';
import { toApi as recordToApi } from '../../lifecycle/records.js';
import type { ApiApp } from '../app.js';
import { ListMicroVMsQuery, MAX_PAGE, MicroVMIdParam } from '../params.js';
import { defineRoute, json, jsonBody, raw } from '../route.js';

const CONSOLE_LOG_MAX_BYTES = 1 << 20;
const tenant = { auth: 'tenant' } as const;

/** `metadata.KEY=value` pairs of a list query (a family of names no fixed schema can declare). */
function metadataFilter(queries: Record<string, string[]>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, values] of Object.entries(queries))
    if (key.startsWith('metadata.')) metadata[key.slice('metadata.'.length)] = values.at(-1) ?? '';
  const badKey = Object.keys(metadata).find((key) => !LABEL_KEY.test(key));
  if (badKey !== undefined)
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      `metadata filter key ${JSON.stringify(badKey)} must match ${LABEL_KEY}`,
    );
  return metadata;
}

/** A MicroVM as the API answers it: the record, its endpoint URL, and its usage while it runs. */
export function microvmView(service: Pick<MicroVMService, 'endpointFor' | 'usageOf'>, record: MicroVMRecord): MicroVM {
  return recordToApi(record, service.endpointFor(record.id), service.usageOf(record.id));
}

export function microvmRoutes(app: ApiApp, service: MicroVMService): void {
  const toApi = (record: MicroVMRecord): MicroVM => microvmView(service, record);

  app.openapi(
    defineRoute(tenant, {
      method: 'post',
      path: '/v1/microvms',
      summary: "Launch a MicroVM (from its image's ready snapshot when there is one)",
      request: { body: jsonBody(RunMicroVMRequest) },
      responses: { 201: json(MicroVMSchema) },
    }),
    async (c) => c.json(toApi(await service.run(c.var.caller.tenantId, c.req.valid('json'))), 201),
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/microvms',
      summary: 'List MicroVMs, newest id last, paginated',
      description: 'Also `metadata.KEY=value` (repeatable): only MicroVMs whose metadata KEY equals the value.',
      request: { query: ListMicroVMsQuery },
      responses: { 200: json(MicroVMList) },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const limit = query.limit ?? MAX_PAGE;
      const records = await service.list({
        tenantId: c.var.caller.tenantId,
        state: query.state as MicroVMState | undefined,
        imageName: query.imageName,
        metadata: metadataFilter(c.req.queries()),
        limit: limit + 1,
        after: query.nextToken,
      });
      const page = records.slice(0, limit);
      return c.json(
        { microvms: page.map(toApi), nextToken: records.length > limit ? page[page.length - 1].id : null },
        200,
      );
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/microvms/{id}/logs',
      summary: "The tail (≤ 1 MiB) of the MicroVM's serial console while it runs",
      request: { params: MicroVMIdParam },
      responses: { 200: raw('text/plain', 'the console tail') },
    }),
    async (c) => {
      const text = await service.consoleLog(c.var.caller.tenantId, c.req.valid('param').id, CONSOLE_LOG_MAX_BYTES);
      return c.body(text, 200, { 'content-type': 'text/plain; charset=utf-8' });
    },
  );

  const vmRoute = (
    method: 'get' | 'post' | 'delete',
    suffix: string,
    summary: string,
    act: (tenantId: string, id: string) => Promise<MicroVMRecord>,
  ): void => {
    app.openapi(
      defineRoute(tenant, {
        method,
        path: `/v1/microvms/{id}${suffix}`,
        summary,
        request: { params: MicroVMIdParam },
        responses: { 200: json(MicroVMSchema) },
      }),
      async (c) => c.json(toApi(await act(c.var.caller.tenantId, c.req.valid('param').id)), 200),
    );
  };
  vmRoute('get', '', 'One MicroVM', (tenantId, id) => service.get(tenantId, id));
  vmRoute('post', '/suspend', 'Suspend: save memory, devices and disk, stop the VM process', (tenantId, id) =>
    service.suspend(tenantId, id),
  );
  vmRoute('post', '/resume', 'Resume exactly where it was suspended', (tenantId, id) => service.resume(tenantId, id));
  vmRoute('delete', '', 'Terminate and discard', (tenantId, id) => service.terminate(tenantId, id));
}

// GET /v1/microvms/{id}/history: the states a MicroVM went through, with when, and how long each launch, suspend
// and resume took (the console's state history and timings).
import { MicroVMHistory } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { Store } from '../../store/types.js';
import type { ApiApp } from '../app.js';
import { MicroVMIdParam } from '../params.js';
import { defineRoute, json } from '../route.js';

export function historyRoute(app: ApiApp, service: MicroVMService, store: Pick<Store, 'history'>): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/microvms/{id}/history',
        summary: 'The states a MicroVM went through, oldest first, with how long each launch, suspend and resume took',
        request: { params: MicroVMIdParam },
        responses: { 200: json(MicroVMHistory) },
      },
    ),
    async (c) => {
      const vm = await service.get(c.var.caller.tenantId, c.req.valid('param').id);
      return c.json({ entries: await store.history(vm.id) }, 200);
    },
  );
}

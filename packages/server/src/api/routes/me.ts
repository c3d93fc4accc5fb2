// GET /v1/me: who the calling key is (its tenant, and whether it is the admin key), so a client such as the
// console can show what the key may do without trying an admin route and reading its 403.
import { CallerInfo } from '@capsule/protocol';
import type { ApiApp } from '../app.js';
import { defineRoute, json } from '../route.js';

export function meRoute(app: ApiApp): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/me',
        summary: "The calling key's tenant, and whether it is the admin key",
        responses: { 200: json(CallerInfo) },
      },
    ),
    (c) => c.json({ tenantId: c.var.caller.tenantId, isAdmin: c.var.caller.isAdmin }, 200),
  );
}

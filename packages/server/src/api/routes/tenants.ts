// Admin routes: tenants, their quotas and API keys. Only the admin key may call them (403 otherwise).
import { randomBytes } from 'node:crypto';
import { ApiKeyCreated, CapsuleError, CreateApiKeyRequest, CreateTenantRequest, ErrorCode, Tenant as TenantSchema, TenantList, UpdateTenantQuotasRequest, type Tenant } from '@capsule/protocol';
import type { CapsuleConfig } from '../../config.js';
import type { Store, TenantRecord } from '../../store/types.js';
import { hashKey, newApiKey, newKeyId } from '../auth.js';
import { readJson, sendJson } from '../http.js';
import type { Route, RouteContext } from '../router.js';

function requireAdmin(ctx: RouteContext): void {
  if (!ctx.isAdmin) throw new CapsuleError(ErrorCode.FORBIDDEN, 'managing tenants and API keys needs the admin key');
}

const toApi = (tenant: TenantRecord): Tenant => ({ id: tenant.id, name: tenant.name, quotas: tenant.quotas, createdAt: tenant.createdAt });

async function tenantOf(store: Store, id: string): Promise<TenantRecord> {
  const tenant = /^[a-z0-9-]{1,64}$/.test(id) ? await store.getTenant(id) : null;
  if (!tenant) throw new CapsuleError(ErrorCode.NOT_FOUND, `tenant ${JSON.stringify(id.slice(0, 64))} not found`);
  return tenant;
}

export function tenantRoutes(store: Store, config: Pick<CapsuleConfig, 'defaultQuotas'>): Route[] {
  return [
    {
      method: 'POST',
      pattern: '/v1/tenants',
      doc: { summary: 'Create a tenant (admin key)', body: CreateTenantRequest, responses: { 201: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        const request = await readJson(ctx.req, CreateTenantRequest);
        const tenant: TenantRecord = {
          id: 'ten-' + randomBytes(8).toString('hex'),
          name: request.name,
          quotas: { ...config.defaultQuotas, ...request.quotas },
          createdAt: new Date().toISOString(),
        };
        if (!(await store.insertTenant(tenant))) throw new CapsuleError(ErrorCode.ALREADY_EXISTS, `a tenant named ${request.name} exists`);
        sendJson(ctx.res, 201, toApi(tenant));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants',
      doc: { summary: 'List tenants (admin key)', responses: { 200: TenantList } },
      async handle(ctx) {
        requireAdmin(ctx);
        sendJson(ctx.res, 200, { tenants: (await store.listTenants()).map(toApi) });
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants/:id',
      doc: { summary: 'One tenant (admin key)', responses: { 200: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        sendJson(ctx.res, 200, toApi(await tenantOf(store, ctx.params.id)));
      },
    },
    {
      method: 'PATCH',
      pattern: '/v1/tenants/:id/quotas',
      doc: { summary: "Change a tenant's quotas (admin key)", body: UpdateTenantQuotasRequest.strict(), responses: { 200: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        const patch = await readJson(ctx.req, UpdateTenantQuotasRequest.strict());
        sendJson(ctx.res, 200, toApi((await store.updateTenantQuotas(tenant.id, { ...tenant.quotas, ...patch }))!));
      },
    },
    {
      method: 'POST',
      pattern: '/v1/tenants/:id/api-keys',
      doc: { summary: 'Create an API key for a tenant, shown once (admin key)', body: CreateApiKeyRequest, responses: { 201: ApiKeyCreated } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        const request = await readJson(ctx.req, CreateApiKeyRequest, 4096, { emptyIsObject: true });
        const key = newApiKey();
        const created: ApiKeyCreated = { id: newKeyId(), tenantId: tenant.id, name: request.name ?? null, key, createdAt: new Date().toISOString() };
        await store.insertApiKey({ id: created.id, keyHash: hashKey(key), tenantId: tenant.id, isAdmin: false, name: created.name, createdAt: created.createdAt });
        sendJson(ctx.res, 201, created);
      },
    },
  ];
}
